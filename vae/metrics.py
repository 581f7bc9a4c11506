"""Numbers that describe a trained model on a data set: ELBO, IW log-likelihood, active units, KL per dim.

All in nats per example (bits per dimension are derived on demand). Each
function runs in batches under `torch.no_grad()` with its own seeded generator,
so evaluating never disturbs a training run's random stream and repeats exactly.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .model import VAE, elbo_parts, gaussian_kl_per_dim, iw_log_likelihood

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2015): a unit is active when Cov_x(E_q[z_d]) > 0.01


def _batches(x: torch.Tensor, batch_size: int):
    for start in range(0, x.shape[0], batch_size):
        yield x[start:start + batch_size]


def as_tensor(x: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """Images as a float32 tensor on `device`; numpy arrays (read-only ones too) are copied once."""
    if torch.is_tensor(x):
        return x.to(device=device, dtype=torch.float32)
    return torch.tensor(np.asarray(x, dtype=np.float32), device=device)


@torch.no_grad()
def evaluate_elbo(model: VAE, x, *, estimator: str = "B", n_samples: int = 1, batch_size: int = 1000,
                  seed: int = 0) -> dict:
    """Mean ELBO, reconstruction log-likelihood and KL over `x`, with beta = 1 (the true bound), and the
    analytic KL of each latent dimension (appendix B) as a list: near zero where a dimension collapsed."""
    device = next(model.parameters()).device
    x = as_tensor(x, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    totals = torch.zeros(3, dtype=torch.float64, device=device)
    per_dim = torch.zeros(model.config.latent_dim, dtype=torch.float64, device=device)
    for xb in _batches(x, batch_size):
        parts = elbo_parts(model, xb, estimator=estimator, n_samples=n_samples, generator=gen)
        totals += torch.stack([parts.elbo.sum(), parts.recon.sum(), parts.kl.sum()]).double()
        per_dim += parts.kl_per_dim.sum(0).double()
    n = max(1, x.shape[0])
    elbo, recon, kl = (totals / n).tolist()
    return {"elbo": elbo, "recon": recon, "kl": kl, "kl_per_dim": (per_dim / n).tolist()}


@torch.no_grad()
def iw_log_likelihood_mean(model: VAE, x, k: int, *, batch_size: int = 100, seed: int = 0) -> float:
    """Mean importance-weighted estimate of log p(x) with K samples (Burda et al. 2015), nats per example."""
    device = next(model.parameters()).device
    x = as_tensor(x, device)
    gen = torch.Generator(device=device).manual_seed(seed)
    total = 0.0
    for xb in _batches(x, batch_size):
        total += iw_log_likelihood(model, xb, k, generator=gen).double().sum().item()
    return total / max(1, x.shape[0])


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


def active_units(mu: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Dimensions whose posterior mean varies across the data (Cov_x E_q[z_d] > threshold)."""
    if mu.shape[0] < 2:
        return 0
    return int((mu.astype(np.float64).var(axis=0, ddof=1) > threshold).sum())


def bits_per_dim(nats_per_example: float, n_pixels: int) -> float:
    """Convert a (negative) log-likelihood in nats per example to (positive) bits per pixel."""
    return -nats_per_example / (n_pixels * math.log(2))
