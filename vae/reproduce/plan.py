"""A reproduction of the paper's figure 2 or 4 (Kingma & Welling 2013, section 5) as a `Plan`, and its
manifest.

A plan is a data set, latent sizes Nz, a preset, a binarisation, and a budget of training samples per
latent size (turned into whole epochs). Each latent size trains into a plain run folder
`<runs>/<name>-nz<K>`, so it also opens in the app's model library; a small manifest
`<runs>/reproductions/<name>/reproduce.json` ties them together.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import ALGORITHMS, BINARIZE, PRESETS, ConfigError, TrainConfig, all_settings, preset_settings
from ..data import BUILTIN_DATASETS
from ..runs import RunError, validate_run_name
from ..storage import atomic_write_bytes

FIGURES = ("fig2", "fig4")
LATENT_DIM = all_settings()["latent_dim"].bound  # a model's own limits (vae.config)
PAPER_LATENT_DIMS = (3, 5, 10, 20, 200)  # figure 2's MNIST panels
FREY_LATENT_DIMS = (2, 5, 10, 20)  # figure 2's Frey Face panels
# Frey Face's pixels are grey levels of a photograph: the paper gives it a Gaussian decoder (appendix C.2),
# and MNIST a Bernoulli one (C.1). A Gaussian decoder's bound is a density in nats, not a probability.
CONTINUOUS_DATASETS = ("frey",)
FIG4_LATENT_DIM = 2  # figure 4: a 2-D latent, decoded over a grid
DEFAULT_BUDGET = 1e7  # training samples per latent size; the paper ran to 2e8
PAPER_BUDGET = 2e8
MAX_BUDGET = 1e10
REPRODUCTIONS = "reproductions"  # <runs>/reproductions/<name>/: manifest, series.csv, manifold.png
MANIFEST = "reproduce.json"
SERIES_CSV = "series.csv"
MANIFOLD_PNG = "manifold.png"
# A manifest's settings that never change (a manifest from before wake-sleep has no "algorithm": aevb).
IDENTITY = ("figure", "dataset", "preset", "binarize", "algorithm", "seed")
MAX_NAME = 56  # so that <name>-nz<K> stays within a run name's 64 characters
NAME_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}$")
# Training throughput on one core of the development machine (full MNIST, Nz = 20, batch 100, one torch
# thread; docs/reproduction.md): the basis of the time a page promises before a run has started.
SAMPLES_PER_S_ONE_CORE = {"paper": 13_000, "default": 15_000}


@dataclass(frozen=True)
class Plan:
    figure: str = "fig2"
    dataset: str = "mnist"
    latent_dims: tuple[int, ...] | None = None  # None: the paper's panels for the data set (paper_latent_dims)
    budget: float = DEFAULT_BUDGET
    preset: str = "paper"
    binarize: str = "none"
    algorithm: str = "aevb"  # or "wake-sleep": figure 2's baseline (Hinton et al. 1995), the same model
    seed: int = 0
    data_dir: str | None = None
    name: str = ""  # the runs are <name>-nz<K>; empty: derived from the settings

    def __post_init__(self):
        if self.latent_dims is None:
            object.__setattr__(self, "latent_dims", paper_latent_dims(self.dataset))
        dims = tuple(sorted({int(k) for k in self.latent_dims}))
        object.__setattr__(self, "latent_dims", dims)
        object.__setattr__(self, "budget", float(self.budget))
        checks = [
            (self.figure in FIGURES, f"figure must be fig2 or fig4, got {self.figure!r}"),
            (self.dataset in BUILTIN_DATASETS,
             f"a reproduction trains on a built-in data set ({', '.join(BUILTIN_DATASETS)}), got {self.dataset!r}"),
            (len(dims) >= 1 and all(LATENT_DIM.admits(k) for k in dims),
             f"latent sizes must be one or more numbers {LATENT_DIM.words()}, got {list(self.latent_dims)}"),
            (self.figure != "fig4" or all(k >= 2 for k in dims), "figure 4 needs a latent of at least 2 dimensions"),
            (math.isfinite(self.budget) and 1 <= self.budget <= MAX_BUDGET,
             f"the budget must be between 1 and {MAX_BUDGET:.0e} training samples, got {self.budget:g}"),
            (self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}"),
            (self.binarize in BINARIZE, f"binarize must be one of {', '.join(BINARIZE)}, got {self.binarize!r}"),
            (self.dataset not in CONTINUOUS_DATASETS or self.binarize == "none",
             f"{self.dataset} has a Gaussian decoder (appendix C.2), so its pixels are not binarised; use "
             "--binarize none"),
            (self.algorithm in ALGORITHMS, f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message + ".")
        if not self.name:
            suffix = "" if self.algorithm == "aevb" else f"-{self.algorithm}"  # AEVB's names are as before
            object.__setattr__(self, "name", f"{self.figure}-{self.dataset}-{self.preset}-{self.binarize}{suffix}")
        if not NAME_PATTERN.match(self.name):
            raise ConfigError(f"the reproduction name {self.name!r} is not allowed; use up to {MAX_NAME} letters, "
                              "digits, '.', '_' or '-', starting with a letter or digit.")

    def run_name(self, latent_dim: int) -> str:
        return f"{self.name}-nz{latent_dim}"

    def epochs(self, n_train: int) -> int:
        """Whole epochs that reach the budget: the run stops at the first epoch end at or past it."""
        return max(1, math.ceil(self.budget / max(1, n_train)))

    def model_settings(self, latent_dim: int) -> dict:
        """ModelConfig fields other than image_shape: the preset's network for this data set (the paper's Frey
        models had 200 hidden units), a Bernoulli decoder (appendix C.1), or a Gaussian one for Frey (C.2)."""
        likelihood = "gaussian" if self.dataset in CONTINUOUS_DATASETS else "bernoulli"
        return {**preset_settings(self.preset, self.dataset)["model"], "latent_dim": int(latent_dim),
                "likelihood": likelihood}

    def train_config(self, n_train: int) -> TrainConfig:
        return TrainConfig(**preset_settings(self.preset, self.dataset)["train"], epochs=self.epochs(n_train),
                           binarize=self.binarize, algorithm=self.algorithm, seed=self.seed)

    def expected_seconds(self, samples_per_s: float | None = None) -> float:
        """Rough training time of the whole plan, sizes one after another, at one core's throughput."""
        rate = samples_per_s or SAMPLES_PER_S_ONE_CORE.get(self.preset, 13_000)
        return self.budget * len(self.latent_dims) / rate

    def identity(self) -> dict:
        """What must match for a second invocation to continue this reproduction rather than mix two."""
        return {key: getattr(self, key) for key in IDENTITY}


def paper_latent_dims(dataset: str) -> tuple[int, ...]:
    """The latent sizes of figure 2's panels for a data set: Frey Face's, else MNIST's."""
    return FREY_LATENT_DIMS if dataset == "frey" else PAPER_LATENT_DIMS


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
        epochs = max(1, math.ceil(budget / max(1, n_train)))
        sizes[str(k)] = {"run": plan.run_name(k), "budget": budget, "epochs": epochs}
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
    if isinstance(data, dict):
        data.setdefault("algorithm", "aevb")  # written before wake-sleep was a choice
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
