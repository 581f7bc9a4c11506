"""Reproducing the paper's figures 2 and 4 (Kingma & Welling 2013, section 5) with ordinary runs.

Figure 2 plots the lower bound (the ELBO, eq. 3) against the number of training samples evaluated,
train and test, for several latent sizes Nz; figure 4 shows the manifold a 2-D latent learned. A
reproduction is a `Plan`: data set, latent sizes, preset, binarisation, and a budget of training
samples per latent size (turned into whole epochs). Each latent size trains through `train_run` into
a plain run folder `<runs>/<name>-nz<K>`, so it also opens in the app's model library, and a small
manifest `<runs>/reproductions/<name>/reproduce.json` ties them together. Running a plan again
continues what is unfinished: a finished size is skipped, a stopped one resumed, and a larger
budget extends every size.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .checkpoint import CheckpointError, load_checkpoint
from .config import BINARIZE, PRESETS, ConfigError, ModelSettings, TrainConfig
from .data import BUILTIN_DATASETS
from .jobs import JobRegistry, JobSpec
from .latent import manifold_grid
from .pictures import tile, to_uint8
from .runs import RunDir, RunError, RunLock, read_metrics, validate_run_name
from .storage import atomic_write_bytes

FIGURES = ("fig2", "fig4")
PAPER_LATENT_DIMS = (3, 5, 10, 20, 200)  # figure 2's MNIST panels
FIG4_LATENT_DIM = 2  # figure 4: a 2-D latent, decoded over a grid
DEFAULT_BUDGET = 1e7  # training samples per latent size; the paper ran to 2e8
PAPER_BUDGET = 2e8
MAX_BUDGET = 1e10
REPRODUCTIONS = "reproductions"  # <runs>/reproductions/<name>/: manifest, series.csv, manifold.png
MANIFEST = "reproduce.json"
SERIES_CSV = "series.csv"
MANIFOLD_PNG = "manifold.png"
IDENTITY = ("figure", "dataset", "preset", "binarize", "seed")  # a manifest's settings that never change
MAX_NAME = 56  # so that <name>-nz<K> stays within a run name's 64 characters
NAME_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}$")
# Training throughput on one core of the development machine (full MNIST, Nz = 20, batch 100, one torch
# thread; docs/reproduction.md): the basis of the time a page promises before a run has started.
SAMPLES_PER_S_ONE_CORE = {"paper": 13_000, "default": 15_000}


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


@dataclass(frozen=True)
class Plan:
    figure: str = "fig2"
    dataset: str = "mnist"
    latent_dims: tuple[int, ...] = PAPER_LATENT_DIMS
    budget: float = DEFAULT_BUDGET
    preset: str = "paper"
    binarize: str = "none"
    seed: int = 0
    data_dir: str | None = None
    name: str = ""  # the runs are <name>-nz<K>; empty: derived from the settings

    def __post_init__(self):
        dims = tuple(sorted({int(k) for k in self.latent_dims}))
        object.__setattr__(self, "latent_dims", dims)
        object.__setattr__(self, "budget", float(self.budget))
        checks = [
            (self.figure in FIGURES, f"figure must be fig2 or fig4, got {self.figure!r}"),
            (self.dataset in BUILTIN_DATASETS,
             f"a reproduction trains on a built-in data set ({', '.join(BUILTIN_DATASETS)}), got {self.dataset!r}"),
            (len(dims) >= 1 and all(1 <= k <= 1024 for k in dims),
             f"latent sizes must be one or more numbers between 1 and 1024, got {list(self.latent_dims)}"),
            (self.figure != "fig4" or all(k >= 2 for k in dims), "figure 4 needs a latent of at least 2 dimensions"),
            (math.isfinite(self.budget) and 1 <= self.budget <= MAX_BUDGET,
             f"the budget must be between 1 and {MAX_BUDGET:.0e} training samples, got {self.budget:g}"),
            (self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}"),
            (self.binarize in BINARIZE, f"binarize must be one of {', '.join(BINARIZE)}, got {self.binarize!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message + ".")
        if not self.name:
            object.__setattr__(self, "name", f"{self.figure}-{self.dataset}-{self.preset}-{self.binarize}")
        if not NAME_PATTERN.match(self.name):
            raise ConfigError(f"the reproduction name {self.name!r} is not allowed; use up to {MAX_NAME} letters, "
                              "digits, '.', '_' or '-', starting with a letter or digit.")

    def run_name(self, latent_dim: int) -> str:
        return f"{self.name}-nz{latent_dim}"

    def epochs(self, n_train: int) -> int:
        """Whole epochs that reach the budget: the run stops at the first epoch end at or past it."""
        return max(1, math.ceil(self.budget / max(1, n_train)))

    def model_settings(self, latent_dim: int) -> dict:
        """ModelConfig fields other than image_shape: the preset's network, a Bernoulli decoder (appendix C.1)."""
        return {**PRESETS[self.preset]["model"], "latent_dim": int(latent_dim), "likelihood": "bernoulli"}

    def train_config(self, n_train: int) -> TrainConfig:
        return TrainConfig(**PRESETS[self.preset]["train"], epochs=self.epochs(n_train), binarize=self.binarize,
                           seed=self.seed)

    def expected_seconds(self, samples_per_s: float | None = None) -> float:
        """Rough training time of the whole plan, sizes one after another, at one core's throughput."""
        rate = samples_per_s or SAMPLES_PER_S_ONE_CORE.get(self.preset, 13_000)
        return self.budget * len(self.latent_dims) / rate

    def identity(self) -> dict:
        """What must match for a second invocation to continue this reproduction rather than mix two."""
        return {key: getattr(self, key) for key in IDENTITY}


# -- the manifest -------------------------------------------------------------------------------
def reproduction_dir(runs_root: str | os.PathLike, name: str) -> Path:
    return Path(runs_root) / REPRODUCTIONS / name


def write_manifest(runs_root: str | os.PathLike, plan: Plan, n_train: int) -> dict:
    """Record the plan, merged with an earlier one of the same name (more sizes, a new budget).
    Refused, in one sentence, when the name already belongs to a reproduction with other settings."""
    folder = reproduction_dir(runs_root, plan.name)
    old = read_manifest(folder / MANIFEST)
    if old:
        for key, value in plan.identity().items():
            if old.get(key) != value:
                raise RunError(f"the reproduction {plan.name!r} was made with {key} {old.get(key)!r}, not "
                               f"{value!r}; choose another name, or the same settings to continue it.")
    sizes = dict(old.get("sizes", {}))
    for k in plan.latent_dims:
        budget = max(plan.budget, float(sizes.get(str(k), {}).get("budget", 0)))  # a smaller budget trains nothing
        sizes[str(k)] = {"run": plan.run_name(k), "budget": budget, "epochs": max(1, math.ceil(budget / max(1, n_train)))}
    manifest = {**plan.identity(), "name": plan.name, "data_dir": plan.data_dir, "n_train": n_train,
                "budget": plan.budget, "sizes": dict(sorted(sizes.items(), key=lambda kv: int(kv[0]))),
                "created": old.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def read_manifest(path: str | os.PathLike) -> dict:
    """A manifest, or {} when it is missing or unreadable (a page lists the readable ones)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("name", *IDENTITY[:-1])):
        return {}
    sizes = data.get("sizes")
    ok = isinstance(sizes, dict) and all(k.isdigit() and isinstance(v, dict) and isinstance(v.get("run"), str)
                                         for k, v in sizes.items())
    if not ok:
        return {}
    try:  # run names become paths under the runs folder: a hand-edited "../x" must not reach outside it
        for v in sizes.values():
            validate_run_name(v["run"])
        validate_run_name(data["name"])
    except RunError:
        return {}
    return data


def list_reproductions(runs_root: str | os.PathLike) -> list[dict]:
    """Every readable manifest under `<runs>/reproductions/`, most recently updated first."""
    root = Path(runs_root) / REPRODUCTIONS
    found = [read_manifest(p) for p in root.glob(f"*/{MANIFEST}")] if root.is_dir() else []
    return sorted((m for m in found if m), key=lambda m: m.get("updated", ""), reverse=True)


# -- one latent size: what is left to do ---------------------------------------------------------
def completed_epochs(run: RunDir) -> int:
    """Epochs saved in the run's checkpoint; 0 when there is none (or it cannot be read)."""
    if not run.checkpoint.exists():
        return 0
    try:
        return int(load_checkpoint(run.checkpoint).summary.get("epochs", 0))
    except (CheckpointError, OSError, ValueError):
        return 0


def _clear_unstarted(run: RunDir) -> None:
    """A run stopped inside its first epoch left metrics but nothing to resume from: start it again.
    The lock refuses (RunError) if a live process is training it."""
    lock = RunLock(run)
    lock.acquire()
    try:
        run.metrics.unlink(missing_ok=True)
    finally:
        lock.release()


def job_spec(runs_root: str | os.PathLike, plan: Plan, latent_dim: int, n_train: int) -> JobSpec | None:
    """What training one latent size needs now: None when its run already reached the budget, a
    resuming spec when it stopped short, a fresh one otherwise."""
    run = RunDir(Path(runs_root) / plan.run_name(latent_dim))
    config = plan.train_config(n_train)
    done = completed_epochs(run)
    if done >= config.epochs:
        return None
    resume = run.resume.exists()
    if not resume and run.holds_run() and not run.checkpoint.exists():
        _clear_unstarted(run)
    return JobSpec(run_name=run.name, dataset=plan.dataset, model=ModelSettings(**plan.model_settings(latent_dim)),
                   train=config, resume=resume, data_dir=plan.data_dir)


def run_plan(plan: Plan, runs_root: str | os.PathLike, data, *, train: Callable[[JobSpec, Path], object],
             on_skip: Callable[[int], None] = lambda k: None) -> dict[int, object]:
    """Train every unfinished size, one after another, through `train(spec, out)` (the command line
    passes train_run with its progress bar). Returns latent size -> what `train` returned (None: skipped)."""
    write_manifest(runs_root, plan, len(data.x_train))
    results: dict[int, object] = {}
    for k in plan.latent_dims:
        spec = job_spec(runs_root, plan, k, len(data.x_train))
        if spec is None:
            on_skip(k)
            results[k] = None
            continue
        results[k] = train(spec, Path(runs_root) / spec.run_name)
        write_series_csv(runs_root, plan.name)  # after each size, so a long reproduction shows progress
    return results


def submit_plan(registry: JobRegistry, plan: Plan, owner: str, n_train: int) -> list[str]:
    """The app's way: one background job per unfinished latent size (the registry queues beyond its
    limit). Returns one sentence per size saying what happened to it."""
    write_manifest(registry.runs_root, plan, n_train)
    said = []
    for k in plan.latent_dims:
        try:
            spec = job_spec(registry.runs_root, plan, k, n_train)
            if spec is None:
                said.append(f"Nz = {k}: already trained to the budget.")
                continue
            job = registry.submit(spec, owner)
            said.append(f"Nz = {k}: {'resumed' if spec.resume else 'started'}"
                        + (f", place {job.queue_position} in the queue." if job.state == "queued" else "."))
        except (RunError, ConfigError) as err:
            said.append(f"Nz = {k}: {err}")
    return said


# -- reading the figure back ------------------------------------------------------------------------
@dataclass
class Series:
    """One curve of figure 2: the lower bound after each epoch of one latent size, on one split."""
    latent_dim: int
    split: str  # "train" (the mean over that epoch's minibatches) or "test" (evaluated at its end)
    run: str
    samples: list[int] = field(default_factory=list)
    elbo: list[float] = field(default_factory=list)

    def at(self, samples: float) -> float | None:
        """The bound at the first epoch end at or past `samples` (None when the run has not got there)."""
        for s, e in zip(self.samples, self.elbo):
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
                              [float(r["elbo"]) for r in rows]))
    return out


def series_csv(series: Sequence[Series]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["latent_dim", "split", "samples", "elbo", "run"])
    for s in series:
        for n, e in zip(s.samples, s.elbo):
            writer.writerow([s.latent_dim, s.split, n, f"{e:.4f}", s.run])
    return buffer.getvalue()


def write_series_csv(runs_root: str | os.PathLike, name: str) -> Path:
    folder = reproduction_dir(runs_root, name)
    path = folder / SERIES_CSV
    atomic_write_bytes(path, series_csv(figure_series(runs_root, read_manifest(folder / MANIFEST))).encode())
    return path


def comparison(series: Sequence[Series], at: Sequence[float] = (1e6, 1e7, PAPER_BUDGET),
               reference: Sequence[ReferencePoint] = PAPER_FIG2_MNIST) -> list[dict]:
    """One row per latent size: our train and test bound at each sample count, next to the paper's."""
    by_size: dict[int, dict[str, Series]] = {}
    for s in series:
        by_size.setdefault(s.latent_dim, {})[s.split] = s
    rows = []
    for k in sorted(by_size):
        row: dict = {"Nz": k}
        last = {split: (s.samples[-1], s.elbo[-1]) for split, s in by_size[k].items() if s.samples}
        row["samples seen"] = max((n for n, _ in last.values()), default=None)
        row.update({f"{split} (last)": last[split][1] if split in last else None for split in ("train", "test")})
        for n in at:
            for split in ("train", "test"):
                s = by_size[k].get(split)
                row[f"{split} at {short(n)}"] = s.at(n) if s else None
            row[f"paper at {short(n)}"] = next((p.elbo for p in reference if p.latent_dim == k and p.samples == n),
                                               None)
        rows.append(row)
    return rows


def short(samples: float) -> str:
    """A sample count as people write it on a log axis: 1e6, 2e8, 3e4."""
    return f"{samples:.0e}".replace("e+0", "e").replace("e+", "e")


# -- figure 4 -------------------------------------------------------------------------------------
def manifold_picture(model, n: int = 20) -> np.ndarray:
    """Figure 4 as one uint8 greyscale image: the decoded grid through the Gaussian inverse CDF
    (the existing `manifold_grid`), tiled with one-pixel white gaps."""
    images, _ = manifold_grid(model, n)
    return to_uint8(tile(images, pad=1))


def write_manifold_png(runs_root: str | os.PathLike, name: str, run_name: str, n: int = 20) -> Path:
    from PIL import Image  # only the command line writes PNGs; the page draws the array itself

    picture = manifold_picture(load_checkpoint(Path(runs_root) / run_name).model, n)
    buffer = io.BytesIO()
    Image.fromarray(picture, mode="L").save(buffer, format="PNG")
    path = reproduction_dir(runs_root, name) / MANIFOLD_PNG
    atomic_write_bytes(path, buffer.getvalue())
    return path


def plan_from_manifest(manifest: dict) -> Plan:
    """The plan a manifest records (its largest budget), e.g. to continue it."""
    budget = max((float(s.get("budget", 0)) for s in manifest["sizes"].values()), default=DEFAULT_BUDGET)
    return Plan(figure=manifest["figure"], dataset=manifest["dataset"],
                latent_dims=tuple(int(k) for k in manifest["sizes"]), budget=budget, preset=manifest["preset"],
                binarize=manifest["binarize"], seed=int(manifest.get("seed", 0)), data_dir=manifest.get("data_dir"),
                name=manifest["name"])
