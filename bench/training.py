"""Training benchmarks on Fashion-MNIST 60k: throughput against the tutorial-style peer, and time to quality.

    python bench/training.py [--repeats 3] [--quick]

1. Throughput (samples/s): MLP 784-400-20, Bernoulli on grey pixels, batch 128, one epoch per
   measurement, the project's trainer and the peer (bench/peer.py) interleaved; the project again at
   larger batches; each against the machine's fp32 GEMM limit (about 3.3 MFLOP per sample).
2. Time to quality: wall time until the test ELBO reaches the peer's 10-epoch test ELBO, for the
   project's best settings against the peer's own 10 epochs.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import peer
import torch
from common import FLOP_PER_SAMPLE, fashion_uint8, gemm_flops, interleaved, median, table

from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.model import build_model
from vae.train import Trainer

THREADS = 2  # the whole machine, for both sides (torch's default here)
MODEL = ModelConfig(image_shape=(28, 28), latent_dim=20, hidden=(400,))


def ours_epoch(data, batch_size: int, lr: float = 1e-3) -> float:
    """samples/s of one epoch of the project's trainer (no run folder, so no file writes)."""
    trainer = Trainer(build_model(MODEL), data, TrainConfig(epochs=1, batch_size=batch_size, lr=lr, log_every=10**9),
                      threads=THREADS)
    return trainer.fit().samples_per_s


def peer_epoch(images, batch_size: int = 128) -> float:
    torch.set_num_threads(THREADS)
    model, optimizer, loader = peer.make(images, batch_size=batch_size)
    seconds, n = peer.train_epoch(model, optimizer, loader)
    return n / seconds


def throughput(data, images, repeats: int, batches=(128, 512, 2048)) -> tuple[str, dict]:
    runs = {"gemm": lambda: gemm_flops(THREADS), "peer@128": lambda: peer_epoch(images)}
    runs.update({f"ours@{b}": (lambda b=b: ours_epoch(data, b)) for b in batches})
    results = interleaved(runs, repeats)  # the GEMM limit too is measured in every round
    limit = median(results.pop("gemm"))
    ref = median(results["peer@128"])
    rows, figures = [], {"gemm_gflops": limit / 1e9}
    for name, values in results.items():
        m = median(values)
        figures[name] = m
        rows.append([name, f"{m:,.0f}", f"{m / ref:.2f}x", f"{m * FLOP_PER_SAMPLE / limit:.0%}",
                     ", ".join(f"{v:,.0f}" for v in values)])
    text = table(["run (batch)", "samples/s (median)", "vs peer@128", "of GEMM limit", "all runs"], rows)
    return text + f"\n\nGEMM limit: {limit / 1e9:,.0f} GFLOP/s (2048x2048 fp32 matmul, {THREADS} threads).", figures


def time_to_quality(data, images, test_images, epochs: int = 10, best=(256, 3e-3)) -> tuple[str, dict]:
    """The peer's 10-epoch test ELBO is the bar; ours stops at the first epoch that reaches it."""
    torch.set_num_threads(THREADS)
    model, optimizer, loader = peer.make(images)
    peer_seconds = 0.0
    for _ in range(epochs):
        peer_seconds += peer.train_epoch(model, optimizer, loader)[0]
    bar = peer.test_elbo(model, test_images)

    reached = {}

    def stop_at_bar(event):
        test = [r for r in event.records if r["split"] == "test"]
        if test and test[0]["elbo"] >= bar and "seconds" not in reached:
            reached.update(seconds=time.perf_counter() - start, epoch=test[0]["epoch"], elbo=test[0]["elbo"])
            stop.set()

    import threading
    stop = threading.Event()
    batch, lr = best
    config = TrainConfig(epochs=epochs * 3, batch_size=batch, lr=lr, log_every=10**9)
    trainer = Trainer(build_model(MODEL), data, config,
                      threads=THREADS, callbacks=[stop_at_bar], stop_event=stop)
    start = time.perf_counter()
    trainer.fit()
    ours = reached.get("seconds")
    rows = [["peer (DataLoader, batch 128, Adam 1e-3)", f"{epochs}", f"{bar:.2f}", f"{peer_seconds:.1f}", "1.00x"],
            [f"ours (batch {batch}, Adam {lr:g}, fused, in memory)", f"{reached.get('epoch', '-')}",
             f"{reached.get('elbo', float('nan')):.2f}", f"{ours:.1f}" if ours else "not reached",
             f"{ours / peer_seconds:.2f}x" if ours else "-"]]
    text = table(["run", "epochs", "test ELBO (nats)", "wall seconds", "time vs peer"], rows)
    return text + "\n\nPeer seconds count training only; ours count training plus a test evaluation per epoch.", \
        {"peer_seconds": peer_seconds, "peer_elbo": bar, "ours_seconds": ours}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 6,000-image subset, for trying the script")
    args = parser.parse_args()
    data = load_dataset("fashion-mnist")
    images, _ = fashion_uint8("train")
    test_images, _ = fashion_uint8("test")
    if args.quick:
        data = dataclasses.replace(data, x_train=data.x_train[:6000], x_test=data.x_test[:1000])
        images, test_images = images[:6000], test_images[:1000]
    print("## Training throughput\n")
    print(throughput(data, images, args.repeats)[0])
    print("\n## Time to quality\n")
    print(time_to_quality(data, images, test_images, epochs=2 if args.quick else 10)[0])


if __name__ == "__main__":
    main()
