"""App responsiveness in Chromium, and the app's memory with Fashion-MNIST and three models loaded.

    python bench/app.py [--repeats 5]

1. Latent space page opened -> map drawn, against a bare Streamlit page with one Plotly scatter of
   the same points (bench/bare_scatter_app.py); fresh browser session each time, warm server.
2. The 70k-point Fashion-MNIST map (a model the evaluation benchmark trains): encoding time in
   Python, and the time from choosing "all" to the map drawn, against the bare page with 70k points.
3. Interpolation slider -> new image drawn, measured inside the page, idle and while a training
   run (1 thread, like the app's jobs) uses the other core.
4. The server's RSS after the 70k map and the two bundled models have been shown.
"""
from __future__ import annotations

import argparse
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

import numpy as np
from common import REPO, median, table

from tests.browser.support import LATENCY_PROBE  # noqa: E402  the in-page clock the browser test uses
from vae.checkpoint import load_checkpoint  # noqa: E402
from vae.data import load_dataset  # noqa: E402
from vae.metrics import posterior_stats  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
MAP_DRAWN = """() => { const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
  return !!(gd && gd.querySelector('.gl-container canvas') && gd._fullData && gd._fullData.length
            && gd._fullData.some(t => t.x && t.x.length)); }"""


@contextlib.contextmanager
def server(script: str, env: dict):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
                             "--server.headless", "true", "--server.address", "127.0.0.1",
                             "--server.fileWatcherType", "none"],
                            cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.25)
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def time_to_map(browser, url: str) -> float:
    """Seconds from navigation to the WebGL map drawn, in a new session."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(MAP_DRAWN, timeout=120_000)
    seconds = time.perf_counter() - t0
    context.close()
    return seconds


def time_to_all_points(browser, url: str, n: int) -> float:
    """Seconds from clicking "all" on the Latent space page to the map of n points drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(MAP_DRAWN, timeout=120_000)
    t0 = time.perf_counter()
    page.locator('[data-testid="stMain"]').get_by_text("all", exact=True).click()
    page.wait_for_function(f"""() => {{ const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
        return gd && gd.layout && gd.layout.title && gd.layout.title.text.includes('{n:,} ')
               && gd.querySelector('.gl-container canvas'); }}""", timeout=300_000)
    seconds = time.perf_counter() - t0
    context.close()
    return seconds


def slider_latencies(browser, url: str) -> list[float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/interpolate")
    chart = page.locator("div.stPlotlyChart").filter(has=page.locator(".slider-container"))
    chart.wait_for(timeout=120_000)
    chart.locator(".js-plotly-plot").evaluate(LATENCY_PROBE)
    ticks, rail = chart.locator("rect.slider-tick-rect"), chart.locator("rect.slider-rail-rect").bounding_box()
    for k, step in enumerate([5, 10, 15, 3, 8, 12, 0, 14, 7, 2, 11]):
        box = ticks.nth(step).bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, rail["y"] + rail["height"] / 2)
        page.wait_for_function("k => window.__probe.latencies.length > k", arg=k, timeout=10_000)
    latencies = page.evaluate("() => window.__probe.latencies")
    context.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fashion-model", type=Path, default=REPO / "runs" / "bench-fashion")
    args = parser.parse_args()
    from evaluation import fashion_model
    from playwright.sync_api import sync_playwright

    fashion = fashion_model(args.fashion_model)
    data = load_dataset("fashion-mnist")
    t0 = time.perf_counter()
    mu_all = np.concatenate([posterior_stats(fashion.model, x)[0] for x in (data.x_train, data.x_test)])
    encode_seconds = time.perf_counter() - t0
    z2 = load_checkpoint(REPO / "assets" / "mnist-5k-z2.safetensors")
    mu_test = posterior_stats(z2.model, load_dataset("mnist-5k").x_test)[0]

    work = Path(tempfile.mkdtemp(prefix="vae-bench-app-"))
    runs = work / "runs"
    shutil.copytree(args.fashion_model, runs / "bench-fashion")
    np.save(work / "small.npy", mu_test)
    np.save(work / "big.npy", mu_all[:, :2].astype(np.float32))
    app_env = {"VAE_RUNS_DIR": str(runs), "VAE_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS)
        with server("app.py", app_env) as (app_url, app_pid), \
                server("bench/bare_scatter_app.py", {"BARE_POINTS": str(work / "small.npy")}) as (bare_url, _), \
                server("bench/bare_scatter_app.py", {"BARE_POINTS": str(work / "big.npy")}) as (big_url, _):
            rss_start = rss_mb(app_pid)
            ours_url = f"{app_url}/?model=asset:mnist-5k-z2.safetensors"
            fashion_url = f"{app_url}/?model=run:bench-fashion"
            for url in (ours_url, bare_url, big_url, fashion_url):  # warm every cache once
                time_to_map(browser, url)
            time_to_all_points(browser, fashion_url, 70_000)  # encodes the 60k training images once
            first = {"ours": [], "bare": []}
            for _ in range(args.repeats):
                first["ours"].append(time_to_map(browser, ours_url))
                first["bare"].append(time_to_map(browser, bare_url))
            big = {"ours": [], "bare": []}
            for _ in range(max(2, args.repeats // 2)):
                big["ours"].append(time_to_all_points(browser, fashion_url, 70_000))
                big["bare"].append(time_to_map(browser, big_url))
            idle = slider_latencies(browser, app_url)
            trainer = subprocess.Popen([sys.executable, "-m", "vae", "train", "--dataset", "mnist-5k",
                                        "--epochs", "500",
                                        "--threads", "1", "--out", str(work / "busy")], cwd=REPO,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(5)
            busy = slider_latencies(browser, app_url)
            trainer.kill()
            time_to_map(browser, f"{app_url}/?model=asset:mnist-5k-z16.safetensors")  # the third model
            rss_end = rss_mb(app_pid)
        browser.close()
    f, b = median(first["ours"]), median(first["bare"])
    rows.append(["Latent space page -> map drawn (1,000 points)", f"{f:.2f} s", f"bare page {b:.2f} s",
                 f"{f / b:.2f}x", "at most 1.5x"])
    g, h = median(big["ours"]), median(big["bare"])
    rows.append(["70,000-point Fashion-MNIST map (choose 'all' -> drawn)", f"{g:.2f} s", f"bare page {h:.2f} s",
                 f"{g / h:.2f}x", "-"])
    rows.append(["encode 70,000 Fashion-MNIST images (posterior means)", f"{encode_seconds:.2f} s", "-", "-",
                 "under 1 s"])
    rows.append(["interpolation slider -> image drawn (median)", f"{median(idle):.0f} ms",
                 "server round trip ~150 ms", "-", "under 100 ms"])
    rows.append(["the same while a run trains (1 thread)", f"{median(busy):.0f} ms", "-", "-", "under 100 ms"])
    rows.append(["app RSS: Fashion-MNIST (70k map) + 3 models", f"{rss_end:,.0f} MB", f"at start {rss_start:,.0f} MB",
                 "-", "under 1,500 MB"])
    print("## App responsiveness and memory\n")
    print(table(["measure", "value", "reference", "ratio", "target"], rows))
    print(f"\nMedians of {args.repeats} fresh sessions each, interleaved, warm server; slider over 11 moves. "
          f"All runs: first plot ours {[round(v, 2) for v in first['ours']]}, "
          f"bare {[round(v, 2) for v in first['bare']]}; "
          f"70k ours {[round(v, 2) for v in big['ours']]}, bare {[round(v, 2) for v in big['bare']]}.")


if __name__ == "__main__":
    main()
