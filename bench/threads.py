"""Training on a busy machine: the default thread choice against --threads 1 and --threads 2.

    python bench/threads.py [--repeats 3] [--epochs 1] [--pinned] [--no-job]

The issue's command, `python -m vae train --dataset fashion-mnist --latent-dim 20 --hidden 400
--batch-size 128`, one fresh process per measurement (so the default's first probe is counted), its
samples/s read from the JSON line it ends with. Conditions: idle (nothing of ours running), and one
core busy: a child process spinning a Python loop, left to the scheduler (as another program would
be) or, with --pinned, also pinned to core 0. Within each repeat every condition runs the three
variants, the order rotating, so slow drifts of the machine weigh on all alike; the table gives
medians and the ratio of the default to the better of 1 and 2 threads measured in the same run.

Second table, for the app's default (VAE_TORCH_THREADS): the same model trained by the app's training
process (`python -m vae.job_process`, fed its JSON job line) with threads 1 or "auto", while this
process's threads build Plotly figures as page scripts do (none: an idle server; two: visitors);
both the job's samples/s and the page work's figures/s are given, since the job's chooser sees only
its own speed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager

from common import REPO, median, table

VARIANTS = {"default": [], "--threads 1": ["--threads", "1"], "--threads 2": ["--threads", "2"]}
TARGETS = {"idle": 0.95, "one core busy": 0.8, "one core busy (pinned)": 0.8}
COMMAND = ["-m", "vae", "train", "--dataset", "fashion-mnist", "--latent-dim", "20", "--hidden", "400",
           "--batch-size", "128", "--log-every", "50"]


@contextmanager
def condition(name: str):
    """Nothing, or a busy-loop child on one core for the duration."""
    if name == "idle":
        yield
        return
    cmd = [sys.executable, "-c", "while True: pass"]
    child = subprocess.Popen(cmd)
    if "pinned" in name:
        os.sched_setaffinity(child.pid, {0})
    time.sleep(0.5)
    try:
        yield
    finally:
        child.kill()
        child.wait()


def train_once(extra: list[str], epochs: int, out: str) -> tuple[float, str]:
    """samples/s of one `vae train` process, and the thread count(s) it printed."""
    proc = subprocess.run([sys.executable, *COMMAND, "--epochs", str(epochs), "--out", out, *extra], cwd=REPO,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"vae train failed: {proc.stderr[-2000:]}")
    chosen = re.findall(r"^torch threads: (\d+)", proc.stderr, re.MULTILINE)
    return json.loads(proc.stdout.splitlines()[-1])["samples_per_s"], "->".join(chosen)


def page_work(stop: threading.Event, done: list) -> None:
    """What a page script does with the interpreter: build a Plotly figure, again and again."""
    import numpy as np
    import plotly.graph_objects as go
    while not stop.is_set():
        fig = go.Figure(go.Scattergl(x=np.random.rand(500), y=np.random.rand(500), mode="markers"))
        fig.update_layout(title="a page's map")
        fig.to_json()
        done.append(1)


def job_once(threads, pages: int, out: str) -> tuple[float, float, str]:
    """The app's training process on the issue's model beside `pages` page-like threads:
    (the job's samples/s, the pages' figures/s, the thread count(s) it chose)."""
    from vae.config import TrainConfig
    job = {"dataset": "fashion-mnist", "data_dir": None, "model": {"latent_dim": 20, "hidden": [400]},
           "train": TrainConfig(epochs=1, batch_size=128, log_every=50).to_dict(), "resume": False, "out": out,
           "threads": threads}
    stop, done = threading.Event(), []
    workers = [threading.Thread(target=page_work, args=(stop, done), daemon=True) for _ in range(pages)]
    for w in workers:
        w.start()
    time.sleep(0.5 if pages else 0)
    child = subprocess.Popen([sys.executable, "-m", "vae.job_process"], cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdin.write(json.dumps(job) + "\n")
    child.stdin.flush()  # stdin stays open: its end would stop the run
    t0, n0, rate = time.perf_counter(), len(done), None
    for line in child.stdout:
        message = json.loads(line)
        if message.get("kind") == "epoch":
            rate = message["samples_per_s"]
        if "end" in message:
            break
    figures = (len(done) - n0) / (time.perf_counter() - t0)
    child.stdin.close()
    stderr = child.stderr.read()
    child.wait()
    stop.set()
    for w in workers:
        w.join()
    if rate is None:
        raise SystemExit(f"the training process failed: {stderr[-2000:]}")
    chosen = re.findall(r"^torch threads: (\d+)", stderr, re.MULTILINE)
    return rate, figures, "->".join(chosen) or str(threads)


def job_table(repeats: int, tmp: str) -> str:
    rows = []
    results: dict = {}
    for r in range(repeats):
        for pages in (0, 2):
            for threads in ((1, "auto") if r % 2 == 0 else ("auto", 1)):
                out = os.path.join(tmp, f"job-{len(os.listdir(tmp))}")
                results.setdefault((pages, threads), []).append(job_once(threads, pages, out))
    for pages in (0, 2):
        one, auto = results[(pages, 1)], results[(pages, "auto")]
        job1, jobauto = median([x[0] for x in one]), median([x[0] for x in auto])
        cells = [f"{'idle server' if not pages else f'{pages} page-like threads'}", f"{job1:,.0f}", f"{jobauto:,.0f}",
                 f"{jobauto / job1:.2f}x"]
        if pages:
            fig1, figauto = median([x[1] for x in one]), median([x[1] for x in auto])
            cells += [f"{fig1:,.1f}", f"{figauto:,.1f}", f"{figauto / fig1:.2f}x"]
        else:
            cells += ["-", "-", "-"]
        rows.append(cells + [", ".join(x[2] for x in auto)])
    return table(["server", "job samples/s, threads 1", "auto", "auto / 1", "page figures/s beside threads 1",
                  "beside auto", "auto / 1", "auto chose (per run)"], rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pinned", action="store_true", help="also the busy loop pinned to core 0")
    parser.add_argument("--no-job", action="store_true", help="leave out the app's training process table")
    args = parser.parse_args()
    conditions = ["idle", "one core busy"] + (["one core busy (pinned)"] if args.pinned else [])
    rates = {(c, v): [] for c in conditions for v in VARIANTS}
    chosen = {c: [] for c in conditions}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for c in conditions:
                names = list(VARIANTS)
                names = names[r % 3:] + names[:r % 3]  # rotate the order from one repeat to the next
                with condition(c):
                    for v in names:
                        rate, picks = train_once(VARIANTS[v], args.epochs, os.path.join(tmp, f"{len(os.listdir(tmp))}"))
                        rates[(c, v)].append(rate)
                        if v == "default":
                            chosen[c].append(picks)
                loads.append(os.getloadavg()[0])
        jobs = None if args.no_job else job_table(args.repeats, tmp)
        loads.append(os.getloadavg()[0])
    rows = []
    for c in conditions:
        m = {v: median(rates[(c, v)]) for v in VARIANTS}
        best = max(m["--threads 1"], m["--threads 2"])
        ratio = m["default"] / best
        rows.append([c, *(f"{m[v]:,.0f}" for v in VARIANTS), f"{ratio:.2f}x", f">= {TARGETS[c]}x",
                     "met" if ratio >= TARGETS[c] else "missed", ", ".join(chosen[c]),
                     "; ".join(", ".join(f"{x:,.0f}" for x in rates[(c, v)]) for v in VARIANTS)])
    print("## Training on a busy machine: the default thread choice\n")
    print(f"`python {' '.join(COMMAND[:3])} ...` (Fashion-MNIST 784-400-20, batch 128, {args.epochs} epoch(s) per "
          f"process), samples/s, median of {args.repeats} interleaved runs; one core busy = a child process spinning "
          "a Python loop. The ratio is the default against the better of 1 and 2 threads in the same run.\n")
    print(table(["condition", "default", "--threads 1", "--threads 2", "default / best", "target", "",
                 "default chose (per run)", "all runs (default; 1; 2)"], rows))
    if jobs:
        print("\n### The app's training process (VAE_TORCH_THREADS 1 or auto) beside page work\n")
        print(f"The same model in `python -m vae.job_process`, one epoch, median of {args.repeats} interleaved runs, "
              "while threads of the benchmark's process build Plotly figures as page scripts do.\n")
        print(jobs)
    print(f"\n1-minute load average during the run: {min(loads):.2f} to {max(loads):.2f} "
          f"({os.cpu_count()} cores; anything above the busy loop's 1 is other work on the machine).")


if __name__ == "__main__":
    main()
