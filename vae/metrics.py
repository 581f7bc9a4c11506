"""Numbers that describe a trained model on a data set: ELBO, IW log-likelihood, active units, KL per dim.

All in nats per example (bits per dimension are derived on demand). Each
function runs in batches under `torch.no_grad()` with its own seeded generator,
so evaluating never disturbs a training run's random stream and repeats exactly.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .config import ESTIMATORS, ConfigError
from .model import VAE, gaussian_kl_per_dim, log_normal, log_weight_chunks

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2015): a unit is active when Cov_x(E_q[z_d]) > 0.01


def _batches(x: torch.Tensor, batch_size: int):
    for start in range(0, x.shape[0], batch_size):
        yield x[start:start + batch_size]


def as_tensor(x: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """Images as a float32 tensor on `device`; numpy arrays (read-only ones too) are copied once."""
    if torch.is_tensor(x):
        return x.to(device=device, dtype=torch.float32)
    return torch.tensor(np.asarray(x, dtype=np.float32), device=device)


EVAL_DRAWS = 16  # eps per test image for `vae eval`'s ELBO: its MC error on 1,000 images falls from 0.11-0.15 nats
# (one draw) to 0.03-0.04, for ~0.35 s more (bundled z16 model, 2 threads; the encoder runs once for all draws)


def _mean_and_se(total: float, var_total: float, n: int) -> tuple[float, float]:
    return total / n, math.sqrt(max(var_total, 0.0)) / n


def _elbo_draws(model: VAE, x: torch.Tensor, estimator: str, n_samples: int, generator,
                max_elements: int = 1 << 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Each draw's (elbo, recon, kl) [L, 3, B] and the analytic KL per dimension [B, D]: the terms of
    eq. 7 (B) or eq. 6 (A) for one eps each, which `vae.model.elbo_parts` averages over its L draws
    (a test checks they agree). Here the encoder runs once for all L, and the draws are decoded in
    chunks of at most ~max_elements pixel values."""
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimator must be A or B, got {estimator!r}.")
    mu, logvar = model.encode(x)
    kl_d = gaussian_kl_per_dim(mu, logvar)
    chunk = max(1, max_elements // max(1, x.shape[0] * model.config.n_pixels))
    out = []
    for start in range(0, n_samples, chunk):
        z = model.reparameterize(mu, logvar, min(chunk, n_samples - start), generator=generator)  # [l, B, D]
        recon = model.log_px_given_z(x, z)  # [l, B]
        if estimator == "B":
            kl = kl_d.sum(-1).expand_as(recon)  # analytic (appendix B): the same in every draw
        else:
            kl = log_normal(z, mu, logvar) - log_normal(z)  # one-sample log q(z|x) - log p(z)
        out.append(torch.stack([recon - kl, recon, kl], dim=1))
    return torch.cat(out).double(), kl_d


@torch.no_grad()
def evaluate_elbo(model: VAE, x, *, estimator: str = "B", n_samples: int = 1, batch_size: int = 1000,
                  seed: int = 0) -> dict:
    """Mean ELBO, reconstruction log-likelihood and KL over `x`, with beta = 1 (the true bound), and the
    analytic KL of each latent dimension (appendix B) as a list: near zero where a dimension collapsed.

    With n_samples = L >= 2 draws of eps per image, also `elbo_se`, `recon_se` and `kl_se`: the Monte Carlo
    standard error of each mean *given these images*, sqrt(sum_i s_i^2 / L) / N with s_i^2 the spread of
    image i's L draws. That is what a user comparing two checkpoints on the same test set needs: how far
    a repeat with fresh eps would move the number. The spread of the ELBO over images (tens of nats per
    image) is not in it: it is the same for every repeat on this test set, and would only matter when
    asking how another test set of the same size would score. Estimator B's KL is analytic: kl_se = 0.
    With L = 1 the draws cannot be told apart from the images, and the three are absent (the training
    loop's one-draw test records keep their keys).
    """
    device = next(model.parameters()).device
    x = as_tensor(x, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    variances = torch.zeros(3, dtype=torch.float64, device=device)  # sum over images of Var(image's mean)
    per_dim = torch.zeros(model.config.latent_dim, dtype=torch.float64, device=device)
    for xb in _batches(x, batch_size):
        parts, kl_d = _elbo_draws(model, xb, estimator, n_samples, gen)  # [L, 3, B], [B, D]
        totals += parts.mean(0).sum(-1)
        if n_samples > 1:
            variances += (parts.var(0) / n_samples).sum(-1)
        per_dim += kl_d.sum(0).double()
    n = max(1, x.shape[0])
    report = {"kl_per_dim": (per_dim / n).tolist()}
    for name, total, var in zip(("elbo", "recon", "kl"), totals.tolist(), variances.tolist(), strict=True):
        report[name], se = _mean_and_se(total, var, n)
        if n_samples > 1:
            report[f"{name}_se"] = se
    return report


@torch.no_grad()
def iw_estimate(model: VAE, x, k: int, *, batch_size: int = 100, seed: int = 0) -> dict:
    """Mean importance-weighted estimate of log p(x) with K samples (Burda et al. 2015), nats per example, and
    its Monte Carlo standard error given these images: {"iw_log_likelihood", "iw_log_likelihood_se"}.

    The per-image variance comes from the same K draws split in two halves: the two half-size bounds
    a, b are independent, so (a - b)^2 / 2 estimates Var(IW_{K/2}), which is at least Var(IW_K) (the
    estimator's variance shrinks as K grows: by half per doubling when the weights are tame, much less
    when they are heavy-tailed, as for MNIST at K = 100). So the SE errs on the safe side, by up to
    sqrt(2) (the 1/K limit). On the bundled models, K = 10 to 1000, 16 repeats with other seeds
    scattered by 0.7-1.1 times it; a delta-method SE from the weights' spread instead fell 2-3x short.
    K = 1: two draws, whose mean is reported (the same bound as one draw) with the exact (a - b)^2 / 4.
    """
    if k < 1:
        raise ConfigError(f"the number of importance samples must be at least 1, got {k}.")
    device = next(model.parameters()).device
    x = as_tensor(x, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    total = var_total = 0.0
    for xb in _batches(x, batch_size):
        # [K, B] log weights: K x B numbers are small; the chunks keep the K x B x pixels decodes small
        log_w = torch.cat(list(log_weight_chunks(model, xb, max(k, 2), generator=gen))).double()
        h = max(1, k // 2)
        a = torch.logsumexp(log_w[:h], 0) - math.log(h)
        b = torch.logsumexp(log_w[h:], 0) - math.log(log_w.shape[0] - h)
        if k == 1:
            total += ((a + b) / 2).sum().item()
            var_total += ((a - b) ** 2 / 4).sum().item()
        else:
            total += (torch.logsumexp(log_w, 0) - math.log(k)).sum().item()
            var_total += ((a - b) ** 2 / 2).sum().item()
    value, se = _mean_and_se(total, var_total, max(1, x.shape[0]))
    return {"iw_log_likelihood": value, "iw_log_likelihood_se": se}


def iw_log_likelihood_mean(model: VAE, x, k: int, *, batch_size: int = 100, seed: int = 0) -> float:
    """The mean of `iw_estimate` alone (bench scripts)."""
    return iw_estimate(model, x, k, batch_size=batch_size, seed=seed)["iw_log_likelihood"]


@torch.no_grad()
def posterior_stats(model: VAE, x, *, batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log variances for every row of x: two float32 arrays [N, D]."""
    device = next(model.parameters()).device
    mus, logvars = [], []
    for xb in _batches(x, batch_size):  # converted batch by batch: 70k images never exist twice
        mu, logvar = model.encode(as_tensor(xb, device))
        mus.append(mu.float().cpu())
        logvars.append(logvar.float().cpu())
    return torch.cat(mus).numpy(), torch.cat(logvars).numpy()


def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean analytic KL per latent dimension over the data [D]; near-zero dimensions have collapsed."""
    return gaussian_kl_per_dim(torch.tensor(mu), torch.tensor(logvar)).mean(0).numpy()


def unit_activity(mu: np.ndarray) -> np.ndarray:
    """Cov_x(E_q[z_d]) per dimension [D]: the variance of the posterior means across the data."""
    if len(mu) < 2:
        return np.zeros(np.shape(mu)[1], np.float64)
    return np.asarray(mu, np.float64).var(axis=0, ddof=1)


def active_units(mu: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Dimensions whose posterior mean varies across the data (Cov_x E_q[z_d] > threshold)."""
    return int((unit_activity(mu) > threshold).sum())


def bits_per_dim(nats_per_example: float, n_pixels: int) -> float:
    """Convert a (negative) log-likelihood in nats per example to (positive) bits per pixel."""
    return -nats_per_example / (n_pixels * math.log(2))
