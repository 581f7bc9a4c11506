"""The estimator lab: how noisy are the gradients of SGVB estimators A (eq. 6) and B (eq. 7)?

For one minibatch and each L (samples of z per datapoint), the gradient of the minibatch objective
is computed `repeats` times with fresh noise eps ~ N(0, I), through `vae.model.elbo_parts`: exactly
the objective the trainer optimises. From those draws come the ELBO estimate's mean and spread and
the per-parameter variance of the gradient. Section 2.3 of the paper prefers B because its KL term
is analytic (appendix B), so only the reconstruction term is sampled: B's gradient variance should
lie below A's at every L, and both should fall about like 1/L (the average of L independent draws).
How far below depends on the weights: before training the decoder ignores z and the encoder's gradient
is nearly all KL term (B's is then thousands of times less noisy there); on the bundled trained models
the reconstruction's noise dominates and B gains only a few per cent.

A and B see the same eps in each repeat (common random numbers): the reconstruction term, and so the
decoder's gradient, is then identical for both, and the difference measured is the KL term's noise
alone, which reaches only the encoder.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .binarize import test_inputs
from .checkpoint import Checkpoint
from .config import ESTIMATORS, ConfigError, ModelConfig, TrainConfig, all_settings
from .data import Dataset
from .metrics import as_tensor
from .model import VAE, build_model, elbo_parts
from .storage import read_json_cache, study_cell_path, write_json_cache

DEFAULT_L_VALUES = (1, 2, 5, 10, 20, 50, 100)
MAX_L = int(all_settings()["n_samples"].bound.high)  # the trainer's own limit on L (vae.config)
MAX_DECODED_PIXELS = 1 << 25  # one [L, B, pixels] tensor of logits: 128 MB of float32, and autograd keeps a few
MAX_STUDY_SAMPLES = 1_000_000  # decoded samples per study (each for A and for B): about a minute on one core


def study_batch(checkpoint: Checkpoint, data: Dataset, size: int, seed: int = 0) -> torch.Tensor:
    """`size` test images drawn without replacement (seeded), as the run saw them (binarised runs binarised)."""
    n_test = len(data.x_test)
    if not 1 <= size <= n_test:
        raise ConfigError(f"the batch size must be between 1 and {n_test} (the test images), got {size}.")
    config = TrainConfig.from_dict({**checkpoint.train_config, "epochs": 1})
    x = test_inputs(data, config, next(checkpoint.model.parameters()).device)
    rows = torch.randperm(n_test, generator=torch.Generator().manual_seed(seed))[:size]
    return x[rows]


def untrained_like(config: ModelConfig, seed: int = 0) -> VAE:
    """The same architecture before any training, every weight drawn from N(0, 0.01^2) as in section 5:
    the decoder barely depends on z yet, so the encoder's gradient is almost all KL term."""
    return build_model(dataclasses.replace(config, init_std=0.01), seed=seed)


def check_study(l_values, repeats: int, batch: int | None = None, n_pixels: int = 784) -> None:
    """One clear sentence (ConfigError) for settings the study cannot run with, or that would hold a
    shared server's memory or CPU for minutes (the page is open to every student)."""
    if not l_values:
        raise ConfigError("choose at least one value of L.")
    if not all(1 <= int(n) <= MAX_L for n in l_values):
        raise ConfigError(f"every L must be between 1 and {MAX_L}, got {sorted(l_values)}.")
    if repeats < 2:
        raise ConfigError(f"a variance needs at least 2 repeats, got {repeats}.")
    if batch is None:
        return
    if batch * max(int(n) for n in l_values) * n_pixels > MAX_DECODED_PIXELS:
        raise ConfigError(f"batch {batch} times L = {max(l_values)} decodes too many pixels at once; "
                          f"keep batch x L under {MAX_DECODED_PIXELS // n_pixels:,}.")
    work = repeats * batch * sum(int(n) for n in l_values)
    if work > MAX_STUDY_SAMPLES:
        raise ConfigError(f"repeats x batch x (sum of L) is {work:,}, over the {MAX_STUDY_SAMPLES:,} this lab allows "
                          "(minutes of a shared server); use fewer repeats, a smaller batch or fewer values of L.")


class _Moments:
    """Running sum and sum of squares (float64) of flat gradient vectors: no need to keep every draw."""

    def __init__(self, n: int):
        self.sum = torch.zeros(n, dtype=torch.float64)
        self.sum_sq = torch.zeros(n, dtype=torch.float64)
        self.count = 0

    def add(self, g: torch.Tensor) -> None:
        g = g.double()
        self.sum += g
        self.sum_sq += g * g
        self.count += 1

    def mean(self) -> torch.Tensor:
        return self.sum / self.count

    def variance(self) -> torch.Tensor:
        """Unbiased per-parameter variance across the draws."""
        return ((self.sum_sq - self.sum ** 2 / self.count) / (self.count - 1)).clamp_min(0.0)


def _signal_to_noise(mean: torch.Tensor, var: torch.Tensor, count: int) -> float:
    """||E[g]|| / sqrt(sum Var[g]): how much of a single gradient is direction rather than noise.
    ||mean of R draws||^2 overstates ||E[g]||^2 by sum Var / R, which is taken off first."""
    noise = var.sum().item()
    signal = max(mean.pow(2).sum().item() - noise / count, 0.0)
    return math.sqrt(signal / noise) if noise > 0 else math.inf


def _row(estimator: str, n_samples: int, x: torch.Tensor, elbos: list[float], moments: _Moments,
         n_encoder: int) -> dict:
    var, mean = moments.variance(), moments.mean()
    return {"estimator": estimator, "L": n_samples, "repeats": moments.count, "batch": int(x.shape[0]),
            "elbo_mean": float(np.mean(elbos)), "elbo_std": float(np.std(elbos, ddof=1)),
            "grad_var": var.mean().item(), "grad_var_encoder": var[:n_encoder].mean().item(),
            "grad_var_decoder": var[n_encoder:].mean().item(),
            "grad_snr": _signal_to_noise(mean, var, moments.count),
            "grad_snr_encoder": _signal_to_noise(mean[:n_encoder], var[:n_encoder], moments.count)}


def study_cell(model: VAE, x, n_samples: int, *, repeats: int = 16, seed: int = 0) -> list[dict]:
    """Rows for A and B at one L: `repeats` gradients of the minibatch loss, each from fresh eps [L, B, D].

    The noise depends only on (seed, L), so a cell gives the same numbers whichever other L are studied.
    The model is deep-copied (a few MB): the caller's weights, flags and .grad are never touched, which
    matters for the app, whose models are shared read-only by every session.
    """
    check_study([n_samples], repeats)
    work = copy.deepcopy(model).requires_grad_(True)
    params = [p for _, p in work.named_parameters()]
    n_encoder = sum(p.numel() for name, p in work.named_parameters() if name.startswith("encoder."))
    device = params[0].device
    x = as_tensor(x, device)
    gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + n_samples)
    moments = {e: _Moments(sum(p.numel() for p in params)) for e in ESTIMATORS}
    elbos: dict[str, list[float]] = {e: [] for e in ESTIMATORS}
    for _ in range(repeats):
        eps = torch.randn((n_samples, x.shape[0], work.config.latent_dim), generator=gen, device=device)
        for estimator in ESTIMATORS:
            parts = elbo_parts(work, x, estimator=estimator, n_samples=n_samples, eps=eps)
            grads = torch.autograd.grad(parts.loss, params)  # returns the gradient; accumulates nothing
            moments[estimator].add(torch.cat([g.reshape(-1) for g in grads]).cpu())
            elbos[estimator].append(parts.elbo.mean().item())
    return [_row(e, n_samples, x, elbos[e], moments[e], n_encoder) for e in ESTIMATORS]


@dataclass
class Study:
    rows: list[dict]  # one per estimator and measured L
    l_values: list[int]  # asked for: sorted, distinct
    done: list[int]  # the L measured so far

    @property
    def fraction_done(self) -> float:
        """The work grows with L, so progress is counted in samples drawn, not in cells."""
        return sum(self.done) / sum(self.l_values)


def run_study(l_values, repeats: int, batch: int, n_pixels: int,
              measure: Callable[[int], list[dict] | None],
              progress: Callable[[float], None] | None = None) -> Study:
    """The study over `l_values`, checked first (`check_study`); `measure(L)` gives one cell's rows, or None
    while that cell is still being computed elsewhere (the Estimator lab's background process).
    `progress(fraction)` after each L."""
    check_study(l_values, repeats, batch, n_pixels)
    study = Study(rows=[], l_values=sorted(set(int(n) for n in l_values)), done=[])
    for n_samples in study.l_values:
        rows = measure(n_samples)
        if rows is not None:
            study.rows += rows
            study.done.append(n_samples)
        if progress is not None:
            progress(study.fraction_done)
    return study


def estimator_study(model: VAE, x, *, l_values=DEFAULT_L_VALUES, repeats: int = 16, seed: int = 0,
                    progress: Callable[[float], None] | None = None) -> list[dict]:
    """One row per estimator and L (see `study_cell`), every cell computed here; `progress(fraction)` after
    each L."""
    return run_study(l_values, repeats, len(x), model.config.n_pixels,
                     lambda n: study_cell(model, x, n, repeats=repeats, seed=seed), progress).rows


# -- one cell, kept in the checkpoint's cache folder -------------------------------------------
STUDY_WEIGHTS = ("trained", "initial")  # the checkpoint's weights, or `untrained_like` it


def read_study_cell(runs_root, sha256: str, **settings) -> list[dict] | None:
    """A cached `cached_study_cell`, or None (never computes); a file of another shape is removed."""
    path = study_cell_path(runs_root, sha256, **settings)
    rows = read_json_cache(path)
    if isinstance(rows, list) and len(rows) == len(ESTIMATORS) and all(
            isinstance(r, dict) and r.get("L") == settings["n_samples"] for r in rows):
        return rows
    if rows is not None:
        path.unlink(missing_ok=True)
    return None


def cached_study_cell(runs_root, checkpoint: Checkpoint, data: Dataset, *, weights: str, batch: int, repeats: int,
                      n_samples: int, seed: int = 0) -> list[dict]:
    """`study_cell` on `study_batch(checkpoint, data, batch, seed)` with the checkpoint's weights ("trained") or
    `untrained_like` them ("initial"), kept as JSON in the checkpoint's cache folder: the Estimator lab's cells."""
    if weights not in STUDY_WEIGHTS:
        raise ConfigError(f"weights must be one of {', '.join(STUDY_WEIGHTS)}, got {weights!r}.")
    settings = dict(weights=weights, batch=batch, repeats=repeats, n_samples=n_samples, seed=seed)
    rows = read_study_cell(runs_root, checkpoint.sha256, **settings)
    if rows is None:
        model = checkpoint.model if weights == "trained" else untrained_like(checkpoint.model_config, seed)
        rows = study_cell(model, study_batch(checkpoint, data, batch, seed), n_samples, repeats=repeats, seed=seed)
        write_json_cache(study_cell_path(runs_root, checkpoint.sha256, **settings), rows)
    return rows


def variance_slope(rows: list[dict], estimator: str, key: str = "grad_var") -> float:
    """Least-squares slope of log variance against log L: about -1 when the variance falls like 1/L."""
    pts = [(math.log(r["L"]), math.log(r[key])) for r in rows if r["estimator"] == estimator and r[key] > 0]
    if len({p[0] for p in pts}) < 2:
        return math.nan
    log_l, log_v = map(np.array, zip(*pts, strict=True))
    return float(np.polyfit(log_l, log_v, 1)[0])


def _times(a: float, b: float, less: str, more: str) -> str:
    """How a compares with b in words: "3.1x smaller" or "1.6x larger" (two decimals near 1)."""
    if a <= 0 or b <= 0:
        return "not comparable (a variance of zero)"
    ratio, word = (b / a, less) if a <= b else (a / b, more)
    return f"{ratio:.2f}x {word}" if ratio < 10 else f"{ratio:,.0f}x {word}"


def summary_sentence(rows: list[dict]) -> str:
    """What was measured, in plain words, for the page: B against A at the smallest L, then the trend in L."""
    by = {(r["estimator"], r["L"]): r for r in rows}
    l_values = sorted({r["L"] for r in rows})
    a, b = by[("A", l_values[0])], by[("B", l_values[0])]
    text = (f"At L={l_values[0]}, B's gradient variance is {_times(b['grad_var'], a['grad_var'], 'smaller', 'larger')} "
            f"than A's (encoder: {_times(b['grad_var_encoder'], a['grad_var_encoder'], 'smaller', 'larger')}; "
            f"the decoder's is the same for both), and B's ELBO estimate spreads "
            f"{_times(b['elbo_std'], a['elbo_std'], 'less', 'more')}.")
    if len(l_values) > 1:
        text += (f" From L={l_values[0]} to L={l_values[-1]} the gradient variance falls with a log-log slope of "
                 f"{variance_slope(rows, 'A'):.2f} for A and {variance_slope(rows, 'B'):.2f} for B "
                 f"(falling like 1/L is a slope of -1).")
    return text
