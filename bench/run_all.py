"""Run every benchmark and write BENCHMARKS.md from what they print.

    python bench/run_all.py            # about 15 minutes on 2 cores; needs Fashion-MNIST and Chromium

Each script prints Markdown; this one runs them one after another (never in parallel: they
would measure each other) and keeps their output verbatim, with the command and the machine.
"""
from __future__ import annotations

import datetime
import subprocess
import sys

from common import REPO, machine

SCRIPTS = [
    ("training.py", "Training throughput and time to quality"),
    ("evaluation.py", "Evaluation"),
    ("app.py", "App"),
    ("job_process.py", "Training beside page work"),
    ("first_contact.py", "First contact: cold start, visitors, replicas, and the busy-machine thread choice"),
    ("snapshots.py", "Snapshots and the Train page's live map"),
    ("anatomy.py", "ELBO anatomy"),
]


TARGETS = """## Targets (issue 5)

| figure | target |
|---|---|
| training throughput at batch 128 | at least 3x the peer |
| fraction of the GEMM limit | at least 50% at the best batch |
| time to the peer's 10-epoch test ELBO | at most 0.25x the peer's time |
| Latent space page -> map drawn | at most 1.5x the bare Streamlit page |
| slider -> image | under 100 ms median, also while a run trains |
| encoding the 70k-point map | under 1 s |
| IW log-likelihood, K = 5000, 10k points | under 4 minutes (240 s) |
| app RSS with Fashion-MNIST and three models | under 1.5 GB |

## Targets (issue 10)

| figure | target |
|---|---|
| cold start: command -> first plot | at most 2x the bare page |
| 4 and 8 new sessions at once: median time to first plot | at most 1.5x the bare page |
| server CPU seconds per new session | at most 2x the bare page |
| 8 new sessions: two replicas behind the proxy | faster than one |
| training with one core busy, default threads | at least 0.8x the best of 1 and 2 threads |
| training on an idle machine, default threads | at least 0.95x the best of 1 and 2 threads |
"""


def main() -> None:
    parts = [
        "# Benchmarks\n",
        f"Made by `python bench/run_all.py` on {datetime.date.today()} ({machine()}). Every figure is a",
        "median of runs interleaved with its reference in the same run on the same machine; these",
        "machines are shared and noisy, so read ratios, not absolute times. Targets come from issues 5 and 10.\n",
    ]
    for script, title in SCRIPTS:
        print(f"running bench/{script} ...", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, str(REPO / "bench" / script)], cwd=REPO, capture_output=True,
                             text=True)
        if out.returncode != 0:
            parts.append(f"## bench/{script} failed\n\n```\n{out.stderr[-3000:]}\n```\n")
            continue
        text = out.stdout.strip()
        parts.append((text if text.startswith("#") else f"## {title}\n\n{text}") + "\n")
    parts.append(TARGETS)
    (REPO / "BENCHMARKS.md").write_text("\n".join(parts))
    print((REPO / "BENCHMARKS.md").read_text())


if __name__ == "__main__":
    main()
