"""First contact (issue 10): the cold start, simultaneous new visitors, replicas, and what each costs.

    python bench/first_contact.py [--repeats 3] [--skip-serve] [--skip-threads]

Each figure is against a bare Streamlit page (bench/bare_scatter_app.py: one Plotly WebGL scatter of
the bundled 2-D model's 1,000 test means) started and opened the same way, in the same run,
interleaved, medians of `--repeats`:
1. cold start: `streamlit run SCRIPT` with a fresh runs folder -> first plot drawn in Chromium
   (the data cache is warm, as on every start after the first; the first start ever is shown too).
2. N = 4 and N = 8 browser sessions opening the home page at once on a warm server: median time
   to the first plot, and the server's CPU seconds per session (the server process and every
   process under it, from /proc, until the server is idle again).
3. N = 8 sessions against one replica and against two behind the proxy (`python -m vae serve`).
4. the busy-machine training ratio, and the app's training process beside page work (bench/threads.py).
Nothing is asserted; tables are printed.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from common import REPO, median, table

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
FIRST_PLOT = """() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
    .some(gd => gd.getBoundingClientRect().width > 0 && gd._fullData && gd._fullData.length)"""
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok":
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not become healthy within {timeout:.0f} s")


@contextlib.contextmanager
def started(cmd: list[str], env: dict, health_url: str):
    """A server process group, stopped with SIGTERM (then SIGKILL) on exit."""
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1", **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_healthy(health_url, proc)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(20)


def streamlit_cmd(script: str, port: int) -> list[str]:
    # Exactly the README's `streamlit run app.py`: the shipped .streamlit/config.toml decides the watcher.
    return [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
            "--server.address", "127.0.0.1"]


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of `root` and every live process below it (children that already
    exited are counted in their parent's cutime/cstime)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            f = stats[pid]
            total += sum(int(v) for v in f[11:15]) / TICKS  # utime stime cutime cstime
        todo += children.get(pid, [])
    return total


def wait_idle(pid: int, quiet_s: float = 1.5, timeout: float = 120) -> None:
    """Until the server tree has used (almost) no CPU for `quiet_s`."""
    deadline, last, quiet_since = time.monotonic() + timeout, tree_cpu_seconds(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = tree_cpu_seconds(pid)
        if now - last > 0.02:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        last = now


async def _session(browser, url: str):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    t0 = time.perf_counter()
    await page.goto(url)
    await page.wait_for_function(FIRST_PLOT, timeout=300_000)
    return time.perf_counter() - t0, context


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS  # all but idle and iowait


async def _sessions(chromium: str, url: str, n: int, pid: int | None):
    """n new sessions at once: their times to first plot, the server's CPU seconds per session, and the
    rest of the machine's (the browsers, mostly) in the same window, per session."""
    from playwright.async_api import async_playwright
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        before, busy = (tree_cpu_seconds(pid) if pid else None), machine_busy_seconds()
        results = await asyncio.gather(*(_session(browser, url) for _ in range(n)))
        cpu = others = None
        if pid:
            await asyncio.to_thread(wait_idle, pid)
            cpu = (tree_cpu_seconds(pid) - before) / n
            others = (machine_busy_seconds() - busy) / n - cpu
        for _, context in results:
            await context.close()
        await browser.close()
    return [s for s, _ in results], cpu, others


def sessions(chromium: str, url: str, n: int, pid: int | None = None):
    return asyncio.run(_sessions(chromium, url, n, pid))


def bare_points(work: Path) -> Path:
    from vae.checkpoint import load_checkpoint
    from vae.data import load_dataset
    from vae.metrics import posterior_stats
    ck = load_checkpoint(REPO / "assets" / "mnist-5k-z2.safetensors")
    path = work / "points.npy"
    np.save(path, posterior_stats(ck.model, load_dataset("mnist-5k").x_test)[0])
    return path


# -- 1. cold start -------------------------------------------------------------------------------
def cold_start(chromium: str, script: str, env: dict, work: Path) -> float:
    """Seconds from the command to the first plot drawn, with a fresh runs folder."""
    runs = Path(tempfile.mkdtemp(prefix="runs-", dir=work))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(streamlit_cmd(script, port), cwd=REPO,
                            env={**os.environ, "VAE_RUNS_DIR": str(runs), **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_healthy(url, proc)
        sessions(chromium, url, 1)
        return time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-serve", action="store_true", help="leave out the replicas' row")
    parser.add_argument("--skip-threads", action="store_true", help="leave out the training thread ratio")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    work = Path(tempfile.mkdtemp(prefix="vae-bench-first-"))
    first_cache = work / "first-cache"  # a data cache that starts empty: the first start ever
    bare_env = {"BARE_POINTS": str(bare_points(work))}
    app_env = {"VAE_TORCH_THREADS": "1"}

    first_ever = cold_start(chromium, "app.py", {**app_env, "VAE_CACHE_DIR": str(first_cache)}, work)
    cold = {"app": [], "bare": []}
    for _ in range(args.repeats):
        cold["app"].append(cold_start(chromium, "app.py", app_env, work))
        cold["bare"].append(cold_start(chromium, "bench/bare_scatter_app.py", bare_env, work))

    crowd = {}
    app_port, bare_port = free_port(), free_port()
    app_url, bare_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{bare_port}"
    runs = work / "runs-warm"
    runs.mkdir()
    with started(streamlit_cmd("app.py", app_port), {**app_env, "VAE_RUNS_DIR": str(runs)}, app_url) as app, \
            started(streamlit_cmd("bench/bare_scatter_app.py", bare_port), bare_env, bare_url) as bare:
        for url, proc in ((app_url, app), (bare_url, bare)):  # warm: the first visit loads models and data
            sessions(chromium, url, 1, proc.pid)
            wait_idle(proc.pid)
        for n in (1, 4, 8):
            for _ in range(args.repeats):
                for name, url, proc in (("app", app_url, app), ("bare", bare_url, bare)):
                    times, cpu, others = sessions(chromium, url, n, proc.pid)
                    crowd.setdefault((name, n), []).append((median(times), cpu, others))
                    wait_idle(proc.pid)

        costs = page_costs(chromium, app_url, app.pid, args.repeats)
        bare_cost = page_costs(chromium, bare_url, bare.pid, args.repeats, {"bare page (reference)": ""}, FIRST_PLOT)

    rows = []
    a, b = median(cold["app"]), median(cold["bare"])
    rows.append(["cold start: command -> first plot, fresh runs folder", f"{a:.1f} s", f"{b:.1f} s", f"{a / b:.2f}x",
                 "at most 2x"])
    rows.append(["the same, first start ever (empty data cache)", f"{first_ever:.1f} s", f"{b:.1f} s",
                 f"{first_ever / b:.2f}x", "-"])
    for n in (1, 4, 8):
        app_t, bare_t = median(t for t, _, _ in crowd[("app", n)]), median(t for t, _, _ in crowd[("bare", n)])
        app_c, bare_c = median(c for _, c, _ in crowd[("app", n)]), median(c for _, c, _ in crowd[("bare", n)])
        app_o, bare_o = median(o for _, _, o in crowd[("app", n)]), median(o for _, _, o in crowd[("bare", n)])
        rows.append([f"{n} new session{'s' * (n > 1)} at once: median time to first plot", f"{app_t:.1f} s",
                     f"{bare_t:.1f} s", f"{app_t / bare_t:.2f}x", "at most 1.5x" if n > 1 else "-"])
        rows.append([f"{n} at once: server CPU seconds per session", f"{app_c:.2f} s", f"{bare_c:.2f} s",
                     f"{app_c / bare_c:.2f}x", "at most 2x"])
        rows.append([f"{n} at once: the rest of the machine (the browsers) per session", f"{app_o:.2f} s",
                     f"{bare_o:.2f} s", f"{app_o / bare_o:.2f}x", "-"])
    print("## First contact: cold start and new visitors\n")
    print(table(["measure", "the app", "bare page", "ratio", "target"], rows))
    print(f"\nMedians of {args.repeats}, interleaved with the bare page. All runs: cold app "
          f"{[round(v, 1) for v in cold['app']]}, bare {[round(v, 1) for v in cold['bare']]}; sessions (median time, "
          "CPU per session): " + "; ".join(f"{name} N={n} {[(round(t, 1), round(c, 2)) for t, c, _ in v]}"
                                           for (name, n), v in crowd.items()) + ".")
    print("\n## What each page costs a new visitor\n")
    print(table(["page", "server CPU seconds", "bytes sent (all)", "of which the page's own"], costs + bare_cost))
    print("\nA new browser session opening the page on a warm server (bundled 2-D model, every shipped result "
          f"seeded), median of {args.repeats} after one warming visit. 'All' includes Streamlit's front end "
          "(about 7 MB, the same for every Streamlit page, cached by a browser after its first page); the page's "
          "own bytes are its websocket messages and media files.")
    if not args.skip_serve:
        print("\n" + replicas(chromium, work, args.repeats))
    if not args.skip_threads:  # bench/threads.py, in its own processes: it loads the machine on purpose
        threads = subprocess.run([sys.executable, str(REPO / "bench" / "threads.py"), "--repeats", str(args.repeats)],
                                 cwd=REPO, capture_output=True, text=True, check=True)
        print("\n" + threads.stdout.strip())


# -- what each page costs a new visitor ------------------------------------------------------------
PAGES = {"Latent space": "", "Interpolate": "interpolate", "Samples": "samples", "Replay training": "replay",
         "Compare": "compare", "Paper figures": "reproduce", "Your input": "your_input",
         "ELBO anatomy": "anatomy", "Estimator lab": "estimator_lab", "Train": "train"}
# The script has run to its end: no "Running…" widget, and its closing note (or Train's "No runs yet") drawn.
PAGE_DONE = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && document.querySelectorAll('[data-testid="stMain"] [data-testid="stExpander"],'
                                 + '[data-testid="stMain"] [data-testid="stAlert"]').length > 0"""


def _bytes(request) -> int:
    try:
        sizes = request.sizes()
        return sizes["responseBodySize"] + sizes["responseHeadersSize"]
    except Exception:  # a request the browser dropped (its page moved on) has no sizes
        return 0


def page_costs(chromium: str, url: str, pid: int, repeats: int, pages: dict[str, str] = PAGES,
               done: str = PAGE_DONE) -> list[list]:
    """Per page, a new session opening it (warm server, bundled 2-D model): the server's CPU seconds, and
    the bytes it sent: everything (the Streamlit front end, which a browser caches after its first page,
    included) and the page's own (websocket messages and media files)."""
    from playwright.sync_api import sync_playwright
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for title, path in pages.items():
            cpu, total, own = [], [], []
            for _ in range(repeats + 1):  # the first visit warms the server's caches for this page
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                requests, frames = [], []
                page.on("requestfinished", lambda r, requests=requests: requests.append(r))
                page.on("websocket", lambda ws, frames=frames: ws.on("framereceived", lambda f: frames.append(len(f))))
                before = tree_cpu_seconds(pid)
                page.goto(f"{url}/{path}")
                page.wait_for_function(done, timeout=300_000)
                wait_idle(pid)
                cpu.append(tree_cpu_seconds(pid) - before)
                sizes = [(r.url, _bytes(r)) for r in requests]  # asked while the page is still open
                total.append(sum(n for _, n in sizes) + sum(frames))
                own.append(sum(n for u, n in sizes if urlparse(u).path.startswith("/media/")) + sum(frames))
                context.close()
            rows.append([title, f"{median(cpu[1:]):.2f} s", f"{median(total[1:]) / 1e6:.2f} MB",
                         f"{median(own[1:]) / 1e3:,.0f} kB"])
        browser.close()
    return rows


# -- 3. one replica against two behind the proxy ---------------------------------------------------
def replicas(chromium: str, work: Path, repeats: int, n: int = 8) -> str:
    results = {}
    for count in (1, 2):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        runs = work / f"runs-serve-{count}"
        runs.mkdir()
        cmd = [sys.executable, "-m", "vae", "serve", "--replicas", str(count), "--port", str(port)]
        with started(cmd, {"VAE_RUNS_DIR": str(runs), "VAE_TORCH_THREADS": "1"}, url) as proc:
            for _ in range(2 * count):  # every replica warm (sessions are spread by the proxy)
                sessions(chromium, url, 1)
            wait_idle(proc.pid)
            results[count] = [median(sessions(chromium, url, n)[0]) for _ in range(repeats)]
    one, two = median(results[1]), median(results[2])
    rows = [[f"{n} new sessions at once, one replica behind the proxy", f"{one:.1f} s", "1.00x", "-"],
            [f"{n} new sessions at once, two replicas behind the proxy", f"{two:.1f} s", f"{two / one:.2f}x",
             "below 1.00x"]]
    return ("## A class on every core: `python -m vae serve`\n\n"
            + table(["measure", "median time to first plot", "vs one replica", "target"], rows)
            + f"\n\nMedians of {repeats}; all runs: one {results[1]}, two {results[2]}.")


if __name__ == "__main__":
    main()
