"""One image's ELBO, stage by stage: x -> q(z|x) = N(mu, diag sigma^2) -> z = mu + sigma * eps -> p(x|z).

For one image and one draw of eps (from a seed, so that a draw repeats): the encoder's mean and standard
deviation, the reparameterised code z (section 2.4), the decoder's mean and one sample of p(x|z), the
log-likelihood of every pixel log p(x_i|z) and the KL of every latent dimension in closed form (appendix B).
Their sums make the one-draw estimate of the bound of eq. 3:

    ELBO = sum_i log p(x_i|z) - sum_j KL_j    (estimator B, eq. 7, with L = 1)

Beside it, what those stages estimate: estimators A (eq. 6) and B (eq. 7) over L draws, their mean and the
spread of one draw (`vae.metrics.evaluate_elbo`), and the importance-weighted bound with K samples
(`vae.inputs.input_log_likelihood`), every one from the same seed. Arrays are numpy, sums float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .config import ConfigError
from .inputs import INPUT_REPEATS, input_log_likelihood
from .metrics import as_tensor, evaluate_elbo
from .model import VAE, gaussian_kl_per_dim
from .precision import format_bound

MAX_L = 1000  # draws of eps for A and B
MAX_K = 1000  # importance samples, which input_log_likelihood repeats INPUT_REPEATS times
# Decodes of the one image a page run may ask for (2 L for A and B, 8 K for IW), so that it stays well under a
# second on one thread (bench/anatomy.py): L = K = 1000 is 10,000 decodes, 0.12 s for the bundled MLPs; a conv
# decoder costs ~20 times more per decode (1,000 decodes: 0.2 s for a 1024-D one).
DECODE_BUDGET = {"mlp": 10_000, "conv": 2_000}
NAMES = {"A": "A (eq. 6)", "B": "B (eq. 7)", "IW": "IW bound (Burda et al.)"}
SHOWN_DIMS = 32  # a latent above this shows its dimensions of largest KL only (up to 1024 would be unreadable)


@dataclass(frozen=True)
class Estimate:
    """One estimator of the bound for this image, in nats."""
    name: str  # "A", "B" or "IW"
    samples: int  # L draws (A, B) or K importance samples (IW)
    mean: float  # the estimate: the mean over the L draws, or the IW bound's mean over its repeats
    spread: float | None  # the standard deviation of one draw's value (A, B with L >= 2); None for IW
    se: float | None  # the standard error of `mean`; None with L = 1


@dataclass(frozen=True)
class Anatomy:
    """The stages of one image's ELBO for one draw of eps ([D] latent arrays, [H, W] images)."""
    x: np.ndarray  # the image, as the model reads it
    mu: np.ndarray  # q(z|x)'s mean: depends on x only
    sigma: np.ndarray  # q(z|x)'s standard deviation exp(logvar / 2): depends on x only
    eps: np.ndarray  # this draw of N(0, I)
    z: np.ndarray  # mu + sigma * eps (section 2.4)
    decoded: np.ndarray  # E[x|z] in [0, 1]
    sample: np.ndarray  # one draw of p(x|z): binary (Bernoulli), or mean + sigma_dec * noise clipped to [0, 1]
    pixel_log_lik: np.ndarray  # log p(x_i|z) per pixel (float64)
    kl_per_dim: np.ndarray  # KL(q(z_j|x) || N(0, 1)) per dimension, appendix B (float64)
    estimates: tuple[Estimate, ...]  # A and B over L draws, the IW bound with K samples
    seed: int  # every random number above comes from it

    @property
    def recon(self) -> float:
        """log p(x|z) for this eps: the pixels' sum (the decoder factorises over pixels, appendix C)."""
        return float(self.pixel_log_lik.sum())

    @property
    def kl(self) -> float:
        return float(self.kl_per_dim.sum())

    @property
    def elbo(self) -> float:
        """Eq. 7 with L = 1, this eps: the reconstruction term minus the analytic KL."""
        return self.recon - self.kl

    def estimate(self, name: str) -> Estimate:
        return next(e for e in self.estimates if e.name == name)

    def table(self) -> list[dict]:
        """The estimators as the page lists them: each estimate to its standard error's digits (vae.precision)."""
        return [{"estimator": NAMES[e.name], "samples": f"{'K' if e.name == 'IW' else 'L'} = {e.samples}",
                 "estimate (nats)": format_bound(e.mean, e.se),
                 "spread of one draw": "" if e.spread is None else f"{e.spread:.2f}"} for e in self.estimates]

    def shown_dims(self, limit: int = SHOWN_DIMS) -> np.ndarray:
        """Every dimension in order for a small latent; beyond `limit`, the `limit` of largest KL for this
        image, largest first (those the image's code uses; the rest sit near the prior)."""
        d = len(self.mu)
        return np.arange(d) if d <= limit else np.argsort(-self.kl_per_dim, kind="stable")[:limit]


def check_settings(model: VAE, x: np.ndarray | torch.Tensor, n_samples: int, k: int) -> None:
    """One clear sentence (ConfigError) for what `anatomy` cannot take."""
    shape = tuple(model.config.image_shape)
    if tuple(np.shape(x)) != shape:
        raise ConfigError(f"the image is {'x'.join(map(str, np.shape(x)))} but the model takes "
                          f"{shape[0]}x{shape[1]} images.")
    if not 1 <= n_samples <= MAX_L:
        raise ConfigError(f"L must be between 1 and {MAX_L}, got {n_samples}.")
    if not 1 <= k <= MAX_K:
        raise ConfigError(f"K must be between 1 and {MAX_K}, got {k}.")
    arch, work = model.config.arch, decodes(n_samples, k)
    if work > DECODE_BUDGET[arch]:
        raise ConfigError(f"L = {n_samples} and K = {k} decode this {arch} model {work:,} times, over the "
                          f"{DECODE_BUDGET[arch]:,} one view allows (a second of a shared server); lower L or K.")


def decodes(n_samples: int, k: int) -> int:
    """How many times `anatomy` runs the decoder on the image: A and B over L draws, the IW bound's repeats."""
    return 2 * n_samples + INPUT_REPEATS * k


@torch.no_grad()
def anatomy(model: VAE, x, *, seed: int = 0, n_samples: int = 100, k: int = 100) -> Anatomy:
    """Every stage of the ELBO for image x [H, W] and the draw of eps that `seed` gives, beside estimators A
    and B over L = n_samples draws and the IW bound with K = k samples (seeded alike: a seed repeats them all).
    Raises ConfigError for an image of another shape, or L or K out of bounds."""
    check_settings(model, x, n_samples, k)
    device = next(model.parameters()).device
    x = as_tensor(x, device)[None]  # [1, H, W]
    gen = torch.Generator(device=device).manual_seed(seed)
    mu, logvar = model.encode(x)  # q(z|x) = N(mu, diag sigma^2), eq. 9
    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype, device=device)
    z = mu + sigma * eps  # section 2.4's z = g_phi(eps, x): the noise is outside, so gradients reach mu, sigma
    pixels = model.log_px_per_pixel(x, z[None])[0, 0]  # [H, W]; their sum is log p(x|z) (appendix C)
    return Anatomy(
        x=_numpy(x[0]), mu=_numpy(mu[0]), sigma=_numpy(sigma[0]), eps=_numpy(eps[0]), z=_numpy(z[0]),
        decoded=_numpy(model.decode_mean(z)[0]), sample=_numpy(_sample(model, z, gen)[0]),
        pixel_log_lik=pixels.double().cpu().numpy(),
        kl_per_dim=gaussian_kl_per_dim(mu, logvar)[0].double().cpu().numpy(),  # appendix B, closed form
        estimates=estimates(model, x, seed=seed, n_samples=n_samples, k=k), seed=seed)


def estimates(model: VAE, x: torch.Tensor, *, seed: int, n_samples: int, k: int) -> tuple[Estimate, ...]:
    """A (eq. 6: log p(x, z) - log q(z|x) sampled) and B (eq. 7: the KL analytic, only log p(x|z) sampled)
    over the same L draws of eps (common random numbers, as in the Estimator lab), and the IW bound."""
    rows = []
    for name in ("A", "B"):
        report = evaluate_elbo(model, x, estimator=name, n_samples=n_samples, seed=seed)
        se = report.get("elbo_se")  # sqrt(var / L) for one image; absent with L = 1
        rows.append(Estimate(name, n_samples, report["elbo"], None if se is None else se * math.sqrt(n_samples), se))
    iw, iw_se = input_log_likelihood(model, x, k, seed=seed)  # Burda et al. (2015); K = 1 is estimator A
    return (*rows, Estimate("IW", k, iw, None, iw_se))


def _sample(model: VAE, z: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One draw of p(x|z) [1, H, W]: Bernoulli pixels, or the Gaussian mean plus its sigma times N(0, 1) noise,
    clipped to [0, 1] for display (the density itself is unbounded)."""
    params, logvar = model.decode(z)
    if model.config.likelihood == "bernoulli":
        return torch.bernoulli(torch.sigmoid(params), generator=gen)
    std = torch.exp(0.5 * logvar) if logvar is not None else torch.full_like(params, model.config.gaussian_std)
    noise = torch.randn(params.shape, generator=gen, dtype=params.dtype, device=params.device)
    return (params + std * noise).clamp(0.0, 1.0)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.float().cpu().numpy()


def vector_text(values, limit: int = 8, decimals: int = 3) -> str:
    """A latent vector as the page prints it, "(0.123, -1.301)"; a longer one as its first `limit` entries
    and how many there are, "(0.123, …, 0.5, …; 16 values)"."""
    values = np.asarray(values, np.float64).reshape(-1)
    shown = ", ".join(f"{v:.{decimals}f}" for v in values[:limit])
    return f"({shown})" if len(values) <= limit else f"({shown}, …; {len(values)} values)"
