"""Reading a reproduction back: figure 2's series (the lower bound of eq. 3 after each epoch, train and
test, per latent size) from each run's metrics.jsonl, as CSV, and beside the values read off the paper.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..runs import read_metrics
from ..storage import atomic_write_bytes
from .plan import MANIFEST, PAPER_BUDGET, SERIES_CSV, read_manifest, reproduction_dir


@dataclass(frozen=True)
class ReferencePoint:
    """A value read by eye off the paper's figure 2 (MNIST panels): approximate, to a nat or so."""
    latent_dim: int
    samples: float  # training samples evaluated
    elbo: float  # nats per example
    split: str  # "test", or "curve" where train and test lie on top of each other at that point


PAPER_FIG2_MNIST = (
    ReferencePoint(20, 1e6, -126.0, "curve"),
    ReferencePoint(20, 1e7, -104.0, "curve"),
    ReferencePoint(20, 2e8, -99.5, "test"),
    ReferencePoint(3, 2e8, -133.6, "test"),
    ReferencePoint(5, 2e8, -118.9, "test"),
    ReferencePoint(10, 2e8, -103.3, "test"),
)


@dataclass
class Series:
    """One curve of figure 2: the lower bound after each epoch of one latent size, on one split."""
    latent_dim: int
    split: str  # "train" (the mean over that epoch's minibatches) or "test" (evaluated at its end)
    run: str
    samples: list[int] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)
    algorithm: str = "aevb"  # or "wake-sleep": its bound is estimated the same way (estimator B, eq. 7)

    def at(self, samples: float) -> float | None:
        """The bound at the first epoch end at or past `samples` (None when the run has not got there)."""
        for s, e in zip(self.samples, self.elbo, strict=True):
            if s >= samples:
                return e
        return None


def figure_series(runs_root: str | os.PathLike, manifest: dict) -> list[Series]:
    """Train and test series of every latent size in a manifest, from each run's metrics.jsonl."""
    out = []
    for key, size in manifest.get("sizes", {}).items():
        records = [r for r in read_metrics(Path(runs_root) / size["run"] / "metrics.jsonl")
                   if r.get("kind") == "epoch"]
        for split in ("train", "test"):
            rows = sorted((r for r in records if r.get("split") == split), key=lambda r: r.get("step", 0))
            out.append(Series(int(key), split, size["run"], [int(r.get("samples", 0)) for r in rows],
                              [float(r["elbo"]) for r in rows], manifest.get("algorithm", "aevb")))
    return out


def series_csv(series: Sequence[Series]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["latent_dim", "split", "samples", "elbo", "run"])
    for s in series:
        for n, e in zip(s.samples, s.elbo, strict=True):
            writer.writerow([s.latent_dim, s.split, n, f"{e:.4f}", s.run])
    return buffer.getvalue()


def write_series_csv(runs_root: str | os.PathLike, name: str) -> Path:
    folder = reproduction_dir(runs_root, name)
    path = folder / SERIES_CSV
    atomic_write_bytes(path, series_csv(figure_series(runs_root, read_manifest(folder / MANIFEST))).encode())
    return path


def comparison(series: Sequence[Series], at: Sequence[float] = (1e6, 1e7, PAPER_BUDGET),
               reference: Sequence[ReferencePoint] = PAPER_FIG2_MNIST) -> list[dict]:
    """One row per algorithm and latent size: our train and test bound at each sample count, next to the
    paper's (AEVB's read-off values; pass `reference=()` where there are none)."""
    by_size: dict[tuple[str, int], dict[str, Series]] = {}
    for s in series:
        by_size.setdefault((s.algorithm, s.latent_dim), {})[s.split] = s
    rows = []
    for algorithm, k in sorted(by_size):
        row: dict = {"algorithm": algorithm, "Nz": k}
        last = {split: (s.samples[-1], s.elbo[-1]) for split, s in by_size[algorithm, k].items() if s.samples}
        row["samples seen"] = max((n for n, _ in last.values()), default=None)
        row.update({f"{split} (last)": last[split][1] if split in last else None for split in ("train", "test")})
        for n in at:
            for split in ("train", "test"):
                s = by_size[algorithm, k].get(split)
                row[f"{split} at {short(n)}"] = s.at(n) if s else None
            row[f"paper at {short(n)}"] = next((p.elbo for p in reference if p.latent_dim == k and p.samples == n
                                                and algorithm == "aevb"), None)
        rows.append(row)
    return rows


def short(samples: float) -> str:
    """A sample count as people write it on a log axis: 1e6, 2e8, 3e4."""
    return f"{samples:.0e}".replace("e+0", "e").replace("e+", "e")
