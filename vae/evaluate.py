"""Evaluate a checkpoint on the test split of the data it was trained on (`python -m vae eval`)."""
from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import Checkpoint, load_checkpoint
from .data import BUILTIN_DATASETS, DataError, Dataset, load_dataset, load_user_data
from .explore import cache_dir, read_json_cache, write_json_cache
from .metrics import active_units, bits_per_dim, evaluate_elbo, iw_log_likelihood_mean, kl_per_dim, posterior_stats
from .train import TrainConfig, resolve_device, test_inputs


def checkpoint_dataset(checkpoint: Checkpoint, data_dir=None) -> Dataset:
    """The data set a checkpoint names: a built-in set, or the user file it came from if still present."""
    info = checkpoint.dataset or {}
    name = info.get("name")
    if not name:
        raise DataError(f"{checkpoint.label} does not record which data set it was trained on.")
    if name in BUILTIN_DATASETS:
        data = load_dataset(name, data_dir=data_dir)
    else:
        source = Path(info.get("source") or "")
        if not source.exists():
            raise DataError(f"{checkpoint.label} was trained on the user file {name}, which is not on this machine.")
        data = load_user_data(source, display_name=name)
    if tuple(data.image_shape) != tuple(checkpoint.model_config.image_shape):
        raise DataError(f"{data.name} has {data.image_shape} images here but {checkpoint.label} expects "
                        f"{tuple(checkpoint.model_config.image_shape)}.")
    return data


def evaluate_checkpoint(path, *, iw_samples: int | None = None, max_points: int | None = None,
                        data_dir=None, device: str = "cpu", threads: int | None = None) -> dict:
    """`python -m vae eval`: load a checkpoint and its data, then `evaluate_model`."""
    if threads:
        torch.set_num_threads(threads)
    checkpoint = load_checkpoint(path)
    checkpoint.model.to(resolve_device(device))
    report = evaluate_model(checkpoint, checkpoint_dataset(checkpoint, data_dir), iw_samples=iw_samples,
                            max_points=max_points)
    return {"checkpoint": str(checkpoint.path), **report}


def evaluation_inputs(checkpoint: Checkpoint, data: Dataset) -> torch.Tensor:
    """The test images as the run saw them (binarised runs: one fixed binarisation), on the model's device."""
    config = TrainConfig.from_dict({**checkpoint.train_config, "epochs": 1})
    return test_inputs(data, config, next(checkpoint.model.parameters()).device)


def evaluate_model(checkpoint: Checkpoint, data: Dataset, *, iw_samples: int | None = None,
                   max_points: int | None = None) -> dict:
    """test_elbo, iw_log_likelihood (when K is given), active_units and kl_per_dim, in nats per example,
    on the test split as the run saw it (binarised runs on a fixed binarisation)."""
    model = checkpoint.model
    x = evaluation_inputs(checkpoint, data)
    if max_points is not None:
        if max_points < 1:
            raise DataError(f"--max-points must be at least 1, got {max_points}.")
        x = x[:max_points]
    elbo = evaluate_elbo(model, x, estimator="B")
    mu, logvar = posterior_stats(model, x)
    report = {"dataset": data.name, "n_points": int(x.shape[0]),
              "test_elbo": round(elbo["elbo"], 3), "test_recon": round(elbo["recon"], 3),
              "test_kl": round(elbo["kl"], 3),
              "bits_per_dim": round(bits_per_dim(elbo["elbo"], checkpoint.model_config.n_pixels), 4),
              "active_units": active_units(mu),
              "kl_per_dim": [round(float(v), 4) for v in kl_per_dim(mu, logvar)],
              "n_parameters": model.n_parameters()}
    if iw_samples is not None:
        if iw_samples < 1:
            raise DataError(f"--iw-samples must be at least 1, got {iw_samples}.")
        report["iw_log_likelihood"] = round(iw_log_likelihood_mean(model, x, iw_samples), 3)
        report["iw_samples"] = iw_samples
    return report


def iw_estimate_path(runs_root, sha256: str, n_points: int, k: int, seed: int = 0) -> Path:
    return cache_dir(runs_root, sha256) / f"iw-mean-{n_points}-{seed}-k{k}.json"


def read_iw_estimate(runs_root, sha256: str, n_points: int, k: int) -> float | None:
    """A cached `cached_iw_estimate`, or None (never computes); a file holding anything but a number goes."""
    path = iw_estimate_path(runs_root, sha256, n_points, k)
    value = read_json_cache(path)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if value is not None:
        path.unlink(missing_ok=True)
    return None


def cached_iw_estimate(runs_root, checkpoint: Checkpoint, data: Dataset, n_points: int, k: int) -> float:
    """The mean IW log-likelihood with K samples on the first n_points test images (as the run saw them),
    kept in the checkpoint's cache folder so that it runs once: the Compare page's slow column."""
    value = read_iw_estimate(runs_root, checkpoint.sha256, n_points, k)
    if value is None:
        x = evaluation_inputs(checkpoint, data)[:n_points]
        value = round(iw_log_likelihood_mean(checkpoint.model, x, k), 3)
        write_json_cache(iw_estimate_path(runs_root, checkpoint.sha256, n_points, k), value)
    return value
