"""Evaluate a checkpoint on the test split of the data it was trained on (`python -m vae eval`)."""
from __future__ import annotations

from pathlib import Path

import torch

from .binarize import test_inputs
from .checkpoint import Checkpoint, load_checkpoint
from .config import TrainConfig
from .data import BUILTIN_DATASETS, DataError, Dataset, load_dataset, load_user_data
from .distributed import resolve_device
from .metrics import EVAL_DRAWS, active_units, bits_per_dim, evaluate_elbo, iw_estimate, kl_per_dim, posterior_stats
from .precision import FIXED_DECIMALS, round_bound, se_decimals


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
                        data_dir=None, device: str = "cpu", threads: int | None = None, seed: int = 0) -> dict:
    """`python -m vae eval`: load a checkpoint and its data, then `evaluate_model`."""
    if threads:
        torch.set_num_threads(threads)
    checkpoint = load_checkpoint(path)
    checkpoint.model.to(resolve_device(device))
    report = evaluate_model(checkpoint, checkpoint_dataset(checkpoint, data_dir), iw_samples=iw_samples,
                            max_points=max_points, seed=seed)
    return {"checkpoint": str(checkpoint.path), **report}


def evaluation_inputs(checkpoint: Checkpoint, data: Dataset) -> torch.Tensor:
    """The test images as the run saw them (binarised runs: one fixed binarisation), on the model's device."""
    config = TrainConfig.from_dict({**checkpoint.train_config, "epochs": 1})
    return test_inputs(data, config, next(checkpoint.model.parameters()).device)


def evaluate_model(checkpoint: Checkpoint, data: Dataset, *, iw_samples: int | None = None,
                   max_points: int | None = None, seed: int = 0) -> dict:
    """test_elbo, iw_log_likelihood (when K is given), active_units and kl_per_dim, in nats per example,
    on the test split as the run saw it (binarised runs on a fixed binarisation).

    The ELBO averages EVAL_DRAWS draws of eps per image, seeded, so the same file gives the same number
    every time; `test_elbo_se` (and `iw_log_likelihood_se`) is the Monte Carlo standard error given these
    test images (`vae.metrics.evaluate_elbo`): what separates two checkpoints measured on the same test
    set, which is how eval's numbers are compared. Each value is rounded to its SE's digits
    (`vae.precision`); test_recon and test_kl to the ELBO's (the KL of estimator B is exact given the
    images: kl_se would be 0), so the three add up as printed.
    """
    model = checkpoint.model
    x = evaluation_inputs(checkpoint, data)
    if max_points is not None:
        if max_points < 1:
            raise DataError(f"--max-points must be at least 1, got {max_points}.")
        x = x[:max_points]
    if iw_samples is not None and iw_samples < 1:
        raise DataError(f"--iw-samples must be at least 1, got {iw_samples}.")
    elbo = evaluate_elbo(model, x, estimator="B", n_samples=EVAL_DRAWS, seed=seed)
    mu, logvar = posterior_stats(model, x)
    test_elbo, test_elbo_se = round_bound(elbo["elbo"], elbo["elbo_se"])
    places = se_decimals(elbo["elbo_se"])
    places = FIXED_DECIMALS if places is None else places
    n_pixels = checkpoint.model_config.n_pixels
    bpd = bits_per_dim(elbo["elbo"], n_pixels)
    report = {"dataset": data.name, "n_points": int(x.shape[0]),
              "test_elbo": test_elbo, "test_elbo_se": test_elbo_se,
              "test_recon": round(elbo["recon"], places), "test_kl": round(elbo["kl"], places),
              "bits_per_dim": round_bound(bpd, -bits_per_dim(elbo["elbo_se"], n_pixels))[0],
              "elbo_draws": EVAL_DRAWS,
              "active_units": active_units(mu),
              "kl_per_dim": [round(float(v), 4) for v in kl_per_dim(mu, logvar)],
              "n_parameters": model.n_parameters()}
    if iw_samples is not None:
        report.update(rounded_iw(iw_estimate(model, x, iw_samples, seed=seed)))
        report["iw_samples"] = iw_samples
    return report


def rounded_iw(estimate: dict) -> dict:
    """An `iw_estimate` with the value rounded to its SE's digits (`vae.precision.round_bound`)."""
    value, se = round_bound(estimate["iw_log_likelihood"], estimate["iw_log_likelihood_se"])
    return {"iw_log_likelihood": value, "iw_log_likelihood_se": se}
