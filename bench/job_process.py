"""Why training jobs run in a child process: a training loop beside busy page-like Python threads.

The same small training loop (the load test's run: 8x8 digits, one hidden layer of 64, batch 10,
one torch thread) runs for a few seconds, either in a thread of this process or in a spawned child,
while N threads of this process build Plotly figures the way page scripts do. Each setting runs
REPEATS times, interleaved; the table gives median samples/s and the ratio to the same side with
no busy threads. `python bench/job_process.py`
"""
from __future__ import annotations

import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECONDS = 6.0
REPEATS = 3
BUSY = (0, 2, 4, 8)


def train_rate(seconds: float = SECONDS) -> float:
    import torch

    from vae.config import ModelConfig
    from vae.model import VAE, elbo_parts
    torch.set_num_threads(1)
    model = VAE(ModelConfig(image_shape=(8, 8), latent_dim=2, hidden=(64,)))
    opt = torch.optim.Adagrad(model.parameters(), lr=0.01)
    x = torch.rand(10, 8, 8)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        loss = -elbo_parts(model, x).elbo.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(x)
    return n / (time.perf_counter() - t0)


def _child(out) -> None:
    out.put(train_rate())


def page_like_work(stop: threading.Event) -> None:
    import numpy as np
    import plotly.graph_objects as go
    while not stop.is_set():
        fig = go.Figure(go.Scattergl(x=np.random.rand(500), y=np.random.rand(500), mode="markers"))
        fig.update_layout(title="a page's map")
        fig.to_json()


def measure(where: str, busy: int) -> float:
    stop = threading.Event()
    workers = [threading.Thread(target=page_like_work, args=(stop,), daemon=True) for _ in range(busy)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    try:
        if where == "thread":
            result: list[float] = []
            t = threading.Thread(target=lambda: result.append(train_rate()))
            t.start()
            t.join()
            return result[0]
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        child = ctx.Process(target=_child, args=(out,))
        child.start()
        rate = out.get()
        child.join()
        return rate
    finally:
        stop.set()
        for w in workers:
            w.join()


def main() -> None:
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(REPEATS):
        for busy in BUSY:
            for where in ("thread", "process"):
                rates.setdefault((where, busy), []).append(measure(where, busy))
    print("## Training beside page work: a thread or a child process\n")
    print(f"The load test's training loop for {SECONDS:.0f} s, median of {REPEATS} interleaved runs, "
          "while N threads of "
          "the server's process build Plotly figures; ratios are to the same side with none.\n")
    print("| busy page-like threads | training in a thread (samples/s, ratio) "
          "| in a child process (samples/s, ratio) |")
    print("|---|---|---|")
    idle = {where: statistics.median(rates[(where, 0)]) for where in ("thread", "process")}
    for busy in BUSY:
        cells = []
        for where in ("thread", "process"):
            median = statistics.median(rates[(where, busy)])
            cells.append(f"{median:,.0f} ({median / idle[where]:.2f}x)")
        print(f"| {busy} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
