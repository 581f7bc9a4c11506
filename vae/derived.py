"""A checkpoint's derived results, each computed once and kept in `<runs>/cache/<sha256>/`.

One function per kind, all called as `fn(runs_root, checkpoint, data, **args)`; each returns the result
and computes nothing when the cache already holds it. The app runs them in its background process
(`vae.background_process`, which picks them from `TASKS` by name); a command that ships a bundled
model's results with it can call the very same functions. Their arguments are JSON values (numbers and
strings), since that is how a task reaches the background process.
"""
from __future__ import annotations

import numpy as np

from .checkpoint import Checkpoint
from .compare import cached_iw_estimate
from .config import ConfigError
from .data import Dataset
from .diagnostics import IW_KS, IWCurve, cached_iw_curve
from .estimators import DEFAULT_L_VALUES, cached_study_cell
from .evaluate import evaluation_inputs
from .inputs import iw_log_likelihoods, reference_images
from .metrics import posterior_stats
from .projections import cached_projection
from .storage import read_json_cache, reference_path, write_json_cache

SPLITS = ("test", "train", "all")
REFERENCE_IMAGES = 300  # test images a drawn input is ranked against (Your input)
# The pages' default settings, for `page_defaults` (a bundled model ships what they ask for on a first visit).
IW_CURVE_POINTS = 100  # test images for the diagnostics' IW curve: K = 5000 on each takes seconds on one core
LAB_DEFAULTS = {"weights": "trained", "batch": 32, "repeats": 16, "seed": 0}  # and every L of DEFAULT_L_VALUES
COMPARE_DEFAULTS = {"n_points": 500, "k": 100}  # app_pages/compare.py's sliders start here
YOUR_INPUT_K = 100  # app_pages/your_input.py's slider starts here


def split_images(data: Dataset, split: str) -> list[np.ndarray]:
    """The image arrays a map of `split` encodes, in its row order ("all": the training images, then the test)."""
    if split not in SPLITS:
        raise ConfigError(f"the split must be one of {', '.join(SPLITS)}, got {split!r}.")
    return {"test": [data.x_test], "train": [data.x_train], "all": [data.x_train, data.x_test]}[split]


def cache_projection(runs_root, checkpoint: Checkpoint, data: Dataset, *, method: str, split: str = "test",
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The map's 2-D projection (`vae.projections.cached_projection`) of the split's posterior means."""
    mu = np.concatenate([posterior_stats(checkpoint.model, x)[0] for x in split_images(data, split)])
    return cached_projection(runs_root, checkpoint.sha256, mu, method, split=split, seed=seed)


def cache_iw_curve(runs_root, checkpoint: Checkpoint, data: Dataset, *, n_points: int, ks=IW_KS,
                   seed: int = 0) -> IWCurve:
    """The IW bound against K on the first `n_points` test images as the run saw them (diagnostics panel)."""
    x = evaluation_inputs(checkpoint, data)[:n_points]
    return cached_iw_curve(runs_root, checkpoint.sha256, checkpoint.model, x, ks, seed=seed)


def cache_iw_estimate(runs_root, checkpoint: Checkpoint, data: Dataset, *, n_points: int, k: int):
    """Compare's IW log-likelihood column (`vae.compare.cached_iw_estimate`)."""
    return cached_iw_estimate(runs_root, checkpoint, data, n_points, k)


def cache_estimator_cell(runs_root, checkpoint: Checkpoint, data: Dataset, *, weights: str, batch: int,
                         repeats: int, n_samples: int, seed: int = 0) -> list[dict]:
    """One L of the Estimator lab: rows for estimators A and B (`vae.estimators.cached_study_cell`)."""
    return cached_study_cell(runs_root, checkpoint, data, weights=weights, batch=batch, repeats=repeats,
                             n_samples=n_samples, seed=seed)


def read_reference_log_likelihoods(runs_root, sha256: str, k: int, n: int = REFERENCE_IMAGES) -> np.ndarray | None:
    """A cached `cache_reference_log_likelihoods`, or None (never computes); a file of another shape is removed."""
    path = reference_path(runs_root, sha256, k, n)
    values = read_json_cache(path)
    if isinstance(values, list) and values and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values):
        return np.asarray(values, np.float64)
    if values is not None:
        path.unlink(missing_ok=True)
    return None


def cache_reference_log_likelihoods(runs_root, checkpoint: Checkpoint, data: Dataset, *, k: int,
                                    n: int = REFERENCE_IMAGES) -> np.ndarray:
    """Each of `n` evenly spread test images' IW log-likelihood with K samples (`vae.inputs.iw_log_likelihoods`):
    what Your input ranks a drawing against."""
    values = read_reference_log_likelihoods(runs_root, checkpoint.sha256, k, n)
    if values is None:
        values = iw_log_likelihoods(checkpoint.model, reference_images(data.x_test, n), k)
        write_json_cache(reference_path(runs_root, checkpoint.sha256, k, n), [float(v) for v in values])
    return values


TASKS = {"projection": cache_projection, "iw-curve": cache_iw_curve, "iw-estimate": cache_iw_estimate,
         "estimator-cell": cache_estimator_cell, "iw-reference": cache_reference_log_likelihoods}


def page_defaults(checkpoint: Checkpoint, data: Dataset) -> list[tuple[str, dict]]:
    """(task name, arguments) of every result the pages ask the background process for, or cache themselves
    (the map's projections), at their default settings: what a fresh install needs for its first visits."""
    n_test, latent = len(data.x_test), checkpoint.model_config.latent_dim
    methods = ["latent"] if latent <= 2 else ["pca", "umap", "tsne"]
    tasks = [("projection", {"method": m, "split": s}) for s in SPLITS for m in methods]
    tasks.append(("iw-curve", {"n_points": min(IW_CURVE_POINTS, n_test)}))
    tasks.append(("iw-estimate", {"n_points": min(COMPARE_DEFAULTS["n_points"], n_test), "k": COMPARE_DEFAULTS["k"]}))
    lab = dict(LAB_DEFAULTS, batch=min(LAB_DEFAULTS["batch"], n_test))
    tasks += [("estimator-cell", dict(lab, n_samples=n)) for n in DEFAULT_L_VALUES]
    tasks.append(("iw-reference", {"k": YOUR_INPUT_K}))
    return tasks

