"""Shared pieces of the benchmarks: the machine's GEMM limit, interleaved medians, Fashion-MNIST, tables.

Every figure is a ratio against a reference measured in the same run on the same machine:
these machines are shared and noisy, so each side runs several times, interleaved, and the
median is reported. Nothing here is asserted; the scripts print tables.
"""
from __future__ import annotations

import gzip
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

FLOP_PER_SAMPLE = 3.3e6  # training 784-400-20-400-784: forward + backward ~ 3 x 2 x 550k weights


def gemm_flops(threads: int, n: int = 2048, repeats: int = 7) -> float:
    """fp32 FLOP/s of a large square matmul with `threads` threads: the machine's practical limit."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times)


def interleaved(runs: dict, repeats: int = 3) -> dict[str, list[float]]:
    """Call each zero-argument function in turn, `repeats` rounds; returns every result per name."""
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            results[name].append(fn())
    return results


def median(values) -> float:
    return float(statistics.median(values))


def fashion_uint8(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST as uint8 images and labels, for the peer (it converts per sample, like ToTensor)."""
    from vae.data import find_idx_dir
    folder = find_idx_dir("fashion-mnist")
    if folder is None:
        raise SystemExit("Fashion-MNIST is needed: install Debian's dataset-fashion-mnist package or set VAE_DATA_DIR.")
    prefix = "train" if split == "train" else "t10k"

    def read(name, offset):
        path = next(p for p in (folder / f"{prefix}-{name}", folder / f"{prefix}-{name}.gz") if p.exists())
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
        return np.frombuffer(raw[offset:], np.uint8)

    return read("images-idx3-ubyte", 16).reshape(-1, 28, 28), read("labels-idx1-ubyte", 8)


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    import os
    import platform
    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
            f"Python {platform.python_version()}")
