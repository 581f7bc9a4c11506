"""Why a VAE does what it does: active units, collapse, the IW gap, and the aggregate posterior.

- Active units (Burda et al. 2015): a dimension is used when its posterior mean varies across
  the data, Cov_x(E_q[z_d]) > 0.01.
- Collapse: a dimension whose KL(q(z_d|x) || p(z_d)) (appendix B) is near zero for every x
  carries no information about x; the decoder learns to ignore it.
- The IW gap: log p(x) - ELBO = KL(q(z|x) || p(z|x)) (eq. 1). The importance-weighted bound
  with K samples climbs from the ELBO (K = 1) towards log p(x), so its rise over K shows how far
  the Gaussian posterior is from the true one.
- The aggregate posterior q(z) = mean_x q(z|x) should match the prior p(z) = N(0, I) if sampling
  from the prior is to give images like the data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .metrics import as_tensor
from .model import VAE, elbo_parts, log_weight_chunks
from .storage import iw_curve_path, read_json_cache, write_json_cache

COLLAPSE_KL = 0.01  # nats: below this a dimension says (almost) nothing about x
IW_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


# -- units: collapsed (their activity is vae.metrics.unit_activity) ---------------------------------
def collapsed_dims(kl_per_dim, threshold: float = COLLAPSE_KL) -> list[int]:
    return [int(i) for i in np.flatnonzero(np.asarray(kl_per_dim) < threshold)]


def collapse_warning(kl_per_dim) -> str | None:
    """A plain-words warning when some or all latent dimensions have collapsed to the prior."""
    kl = np.asarray(kl_per_dim, np.float64)
    dead = collapsed_dims(kl)
    if not dead:
        return None
    if len(dead) == len(kl):
        return (f"Posterior collapse: every latent dimension has a KL below {COLLAPSE_KL} nats, so q(z|x) is "
                "the prior for every image and the decoder ignores z. Samples will all look alike. Common "
                "causes: a decoder strong enough to model x alone, a large beta, or too short a KL warm-up.")
    names = ", ".join(f"z{d}" for d in dead[:12]) + (" …" if len(dead) > 12 else "")
    return (f"{len(dead)} of {len(kl)} latent dimensions have collapsed ({names}): their KL is below "
            f"{COLLAPSE_KL} nats, so they carry no information about the image and the decoder ignores them. "
            "That is normal for a large latent (the KL term prunes what the data does not need); "
            "it means the model uses fewer dimensions than it was given.")


def kl_history(history: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(epochs [E], KL per dimension [E, D]) from a checkpoint's test records, for runs that kept it."""
    rows = [r for r in history if r.get("split") == "test" and isinstance(r.get("kl_per_dim"), list)]
    if not rows:
        return np.zeros(0), np.zeros((0, 0))
    width = len(rows[-1]["kl_per_dim"])
    rows = [r for r in rows if len(r["kl_per_dim"]) == width]
    return (np.array([r["epoch"] for r in rows], np.float64),
            np.array([r["kl_per_dim"] for r in rows], np.float64))


# -- the IW gap -----------------------------------------------------------------------------
@dataclass(frozen=True)
class IWCurve:
    ks: list[int]
    iw: list[float]  # mean IW bound per K, nats per example
    iw_se: list[float]  # its standard error over the points
    elbo: float  # the analytic-KL ELBO (estimator B) on the same points, for reference
    n_points: int

    @property
    def gap(self) -> float:
        """How much the largest K gains over the ELBO: a lower bound on E KL(q(z|x) || p(z|x))."""
        return self.iw[-1] - self.elbo


@torch.no_grad()
def iw_curve(model: VAE, x, ks=IW_KS, *, seed: int = 0, batch_size: int = 10) -> IWCurve:
    """The IW bound for every K in `ks` from one set of max(ks) samples per point: the bound for K
    uses the first K weights (each prefix is itself an unbiased draw), so the curve costs max(ks)."""
    ks = sorted({int(k) for k in ks if k >= 1})
    device = next(model.parameters()).device
    x = as_tensor(x, device)
    per_point, elbos = [], []
    elbo_gen = torch.Generator(device=device).manual_seed(seed + 7)
    for i, start in enumerate(range(0, x.shape[0], batch_size)):
        xb = x[start:start + batch_size]
        gen = torch.Generator(device=device).manual_seed(seed + i)
        chunks = log_weight_chunks(model, xb, ks[-1], max_elements=1 << 23, generator=gen)
        lw = torch.cat(list(chunks)).double()  # [K, B]
        cum = torch.logcumsumexp(lw, dim=0)
        per_point.append(torch.stack([cum[k - 1] - math.log(k) for k in ks], dim=1))  # [B, len(ks)]
        elbos.append(elbo_parts(model, xb, estimator="B", n_samples=64, generator=elbo_gen).elbo.double())
    table = torch.cat(per_point)
    se = table.std(0) / math.sqrt(table.shape[0]) if table.shape[0] > 1 else torch.zeros(len(ks))
    return IWCurve(ks=ks, iw=table.mean(0).tolist(), iw_se=se.tolist(), elbo=float(torch.cat(elbos).mean()),
                   n_points=int(table.shape[0]))


def read_iw_curve(path: Path) -> IWCurve | None:
    """A cached curve, or None when there is none; a damaged file is removed (recomputed, never trusted)."""
    fields = read_json_cache(path)
    try:
        return None if fields is None else IWCurve(**fields)
    except TypeError:  # valid JSON of another shape
        path.unlink(missing_ok=True)
        return None


def cached_iw_curve(runs_root, sha256: str, model: VAE, x, ks=IW_KS, *, seed: int = 0) -> IWCurve:
    """`iw_curve`, kept in the checkpoint's cache folder as JSON (numbers only) so it runs once."""
    path = iw_curve_path(runs_root, sha256, len(x), ks, seed)
    curve = read_iw_curve(path)
    if curve is None:
        curve = iw_curve(model, x, ks, seed=seed)
        write_json_cache(path, curve.__dict__)
    return curve


# -- the aggregate posterior ----------------------------------------------------------------
@dataclass(frozen=True)
class AggregatePosterior:
    mean: np.ndarray  # [D] E_x[mu]
    variance: np.ndarray  # [D] Var_x[mu] + E_x[sigma^2] (the law of total variance)
    kl_to_prior: float  # KL(N(mean, Cov) || N(0, I)) of the moment-matched Gaussian, nats

    def summary(self) -> str:
        worst = int(np.argmax(np.abs(self.mean) + np.abs(self.variance - 1)))
        return (f"moment-matched KL to the prior {self.kl_to_prior:.2f} nats; the most distant dimension is z{worst} "
                f"(mean {self.mean[worst]:+.2f}, variance {self.variance[worst]:.2f}; the prior has 0 and 1)")


def aggregate_posterior(mu: np.ndarray, logvar: np.ndarray) -> AggregatePosterior:
    mu, var = np.asarray(mu, np.float64), np.exp(np.asarray(logvar, np.float64))
    mean = mu.mean(0)
    cov = np.atleast_2d(np.cov(mu, rowvar=False, ddof=0)) + np.diag(var.mean(0))
    d = len(mean)
    _, logdet = np.linalg.slogdet(cov)
    kl = 0.5 * (np.trace(cov) + mean @ mean - d - logdet)  # KL(N(m, S) || N(0, I))
    return AggregatePosterior(mean=mean, variance=np.diag(cov).copy(), kl_to_prior=float(kl))


def marginal_density(mu: np.ndarray, logvar: np.ndarray, dim: int, grid: np.ndarray,
                     max_points: int = 5000) -> np.ndarray:
    """q(z_d) = mean_x N(z_d; mu_d(x), sigma_d(x)^2) on `grid`: the aggregate posterior's marginal."""
    step = max(1, len(mu) // max_points)
    m = np.asarray(mu, np.float64)[::step, dim][:, None]
    s2 = np.exp(np.asarray(logvar, np.float64)[::step, dim])[:, None]
    return (np.exp(-0.5 * (grid[None, :] - m) ** 2 / s2) / np.sqrt(2 * np.pi * s2)).mean(0)


def prior_density(grid: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * grid ** 2) / math.sqrt(2 * math.pi)
