"""Evaluation benchmark: the IW log-likelihood with K = 5000 on 10,000 Fashion-MNIST test images.

    python bench/evaluation.py [--points 10000] [--k 5000] [--model runs/bench-fashion]

Trains (or reuses) a 784-400-20 model on Fashion-MNIST, then times `iw_log_likelihood_mean`
and reports seconds and the fraction of the machine's fp32 GEMM limit. The decoder dominates:
per importance sample about 2 x (20 x 400 + 400 x 784) = 0.64 MFLOP.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import REPO, gemm_flops, median, table

from vae.checkpoint import load_checkpoint
from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.metrics import iw_log_likelihood_mean
from vae.train import train_run

THREADS = 2
FLOP_PER_IW_SAMPLE = 2 * (20 * 400 + 400 * 784)


def fashion_model(path: Path):
    if not (path / "model.safetensors").exists():
        train_run(path, load_dataset("fashion-mnist"), ModelConfig(image_shape=(28, 28), latent_dim=20, hidden=(400,)),
                  TrainConfig(epochs=10, batch_size=512, lr=2e-3), threads=THREADS)
    return load_checkpoint(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--model", type=Path, default=REPO / "runs" / "bench-fashion")
    args = parser.parse_args()
    ck = fashion_model(args.model)
    data = load_dataset("fashion-mnist")
    x = data.x_test[: args.points]
    limits = [gemm_flops(THREADS)]
    torch.set_num_threads(THREADS)
    t0 = time.perf_counter()
    ll = iw_log_likelihood_mean(ck.model, x, args.k)
    seconds = time.perf_counter() - t0
    limits.append(gemm_flops(THREADS))
    limit = median(limits)
    flops = FLOP_PER_IW_SAMPLE * args.k * len(x)
    print("## Evaluation: IW log-likelihood\n")
    print(table(["K", "test points", "iw_log_likelihood (nats)", "seconds", "decoder GFLOP/s", "of GEMM limit"],
                [[args.k, len(x), f"{ll:.2f}", f"{seconds:.1f}", f"{flops / seconds / 1e9:.0f}",
                  f"{flops / seconds / limit:.0%}"]]))
    print(f"\nGEMM limit {limit / 1e9:,.0f} GFLOP/s ({THREADS} threads), measured before and after. "
          f"Model: {ck.path} (test ELBO {ck.summary.get('test_elbo')}).")


if __name__ == "__main__":
    main()
