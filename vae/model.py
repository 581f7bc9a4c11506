"""The variational auto-encoder of Kingma & Welling (2013), *Auto-Encoding Variational Bayes*.

A Gaussian encoder q(z|x) = N(mu, diag sigma^2), a Bernoulli or Gaussian
decoder p(x|z), the reparameterisation z = mu + sigma * eps (section 2.4), the
two SGVB estimators of the ELBO (eq. 6 and eq. 7) and the importance-weighted
bound of Burda et al. (2015) as a log-likelihood estimate.

Everything is per example and in nats: `elbo` and `iw_log_likelihood` are
lower bounds on log p(x), negative numbers, higher is better.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .config import ESTIMATORS, ConfigError, ModelConfig

LOG_2PI = math.log(2 * math.pi)


@dataclass
class ELBOParts:
    """The SGVB estimate and its parts, one value per example (nats)."""

    elbo: torch.Tensor  # [B] recon - kl: the lower bound of eq. 3
    recon: torch.Tensor  # [B] E_q[log p(x|z)], the expected reconstruction log-likelihood
    kl: torch.Tensor  # [B] KL(q(z|x) || p(z)): analytic for B, Monte Carlo for A
    kl_per_dim: torch.Tensor  # [B, D] analytic KL per latent dimension (appendix B), for diagnostics
    loss: torch.Tensor = field(default=None)  # scalar: minibatch_loss(self, beta), the batch's mean


def _activation(name: str) -> nn.Module:
    return nn.Tanh() if name == "tanh" else nn.ReLU()


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(_activation(activation))
    return nn.Sequential(*layers)


def _conv_encoder(config: ModelConfig, n_out: int) -> nn.Sequential:
    h, w = config.image_shape
    act = _activation(config.activation)
    return nn.Sequential(
        nn.Unflatten(1, (1, h)),  # [B, H, W] -> [B, 1, H, W]
        nn.Conv2d(1, 32, 4, stride=2, padding=1), act,
        nn.Conv2d(32, 64, 4, stride=2, padding=1), act,
        nn.Flatten(),
        nn.Linear(64 * (h // 4) * (w // 4), config.hidden[0]), act,
        nn.Linear(config.hidden[0], n_out),
    )


def _conv_decoder(config: ModelConfig, n_maps: int) -> nn.Sequential:
    h, w = config.image_shape
    act = _activation(config.activation)
    return nn.Sequential(
        nn.Linear(config.latent_dim, config.hidden[0]), act,
        nn.Linear(config.hidden[0], 64 * (h // 4) * (w // 4)), act,
        nn.Unflatten(1, (64, h // 4, w // 4)),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), act,
        nn.ConvTranspose2d(32, n_maps, 4, stride=2, padding=1),
        nn.Flatten(),
    )


class VAE(nn.Module):
    """Encoder, decoder and the reparameterisation; the ELBO lives in `elbo_parts`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d, n = config.latent_dim, config.n_pixels
        # The decoder emits one map per pixel parameter: logits (Bernoulli), or mean and log sigma^2 (Gaussian).
        n_maps = 2 if config.likelihood == "gaussian" and config.gaussian_std is None else 1
        if config.arch == "mlp":
            self.encoder = nn.Sequential(nn.Flatten(), _mlp([n, *config.hidden, 2 * d], config.activation))
            self.decoder = _mlp([d, *reversed(config.hidden), n_maps * n], config.activation)
        else:
            self.encoder = _conv_encoder(config, 2 * d)
            self.decoder = _conv_decoder(config, n_maps)
        if config.init_std is not None:
            with torch.no_grad():
                for p in self.parameters():
                    p.normal_(0.0, config.init_std)

    # -- the three operations of section 2.4 ---------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): posterior mean and log variance, each [B, D]."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, n_samples: int = 1,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I) (eq. 10's g_phi): [L, B, D], differentiable in mu and sigma."""
        eps = torch.randn((n_samples, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """p(x|z)'s parameters shaped like images [..., H, W]: (logits, None) or (mean, log sigma^2)."""
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))
        h, w = self.config.image_shape
        if self.config.likelihood == "bernoulli":
            return out.reshape(*lead, h, w), None
        if self.config.gaussian_std is None:
            mean_logits, logvar = out.reshape(-1, 2, h * w).unbind(1)
            logvar = logvar.reshape(*lead, h, w)
        else:
            mean_logits, logvar = out, None
        # The paper's Frey Face decoder squashes the mean into (0, 1), like the pixels (appendix C.2).
        return torch.sigmoid(mean_logits).reshape(*lead, h, w), logvar

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x|z] in [0, 1], shaped [..., H, W]: what a page shows as the decoded image."""
        params, _ = self.decode(z)
        return torch.sigmoid(params) if self.config.likelihood == "bernoulli" else params

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over pixels: x [B, H, W], z [L, B, D] -> [L, B]."""
        params, logvar = self.decode(z)
        if self.config.likelihood == "bernoulli":
            # Appendix C.1, sum_i x_i log y_i + (1 - x_i) log(1 - y_i) with y = sigmoid(l), is exactly
            # x.l - sum_i softplus(l_i): one elementwise pass, and x.l as a batched dot product.
            logits = params.flatten(-2)
            x_dot_l = torch.einsum("...bp,bp->...b", logits, x.flatten(-2))
            return x_dot_l - F.softplus(logits).sum(-1)
        return self._gaussian_log_p(x, params, logvar).flatten(-2).sum(-1)

    def log_px_per_pixel(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x_i|z) of each pixel, x [B, H, W], z [L, B, D] -> [L, B, H, W]: `log_px_given_z` before its
        sum over pixels (the ELBO anatomy page's heat map), in appendix C.1's form for a Bernoulli decoder."""
        params, logvar = self.decode(z)
        if self.config.likelihood == "bernoulli":
            return x * params - F.softplus(params)  # x_i log y_i + (1 - x_i) log(1 - y_i), y = sigmoid(l)
        return self._gaussian_log_p(x, params, logvar)

    def _gaussian_log_p(self, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor:
        """log N(x_i; mean_i, sigma_i^2) per pixel; a fixed sigma (`gaussian_std`) when the decoder emits none."""
        if logvar is None:
            logvar = torch.full_like(mean, 2 * math.log(self.config.gaussian_std))
        return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the posterior mean, shaped like the input (an image in, an image out)."""
        mu, _ = self.encode(x)
        return self.decode_mean(mu)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


_INIT_LOCK = threading.Lock()  # torch's default init draws from the global generator, shared by all threads


def build_model(config: ModelConfig, seed: int = 0) -> VAE:
    """A freshly initialised model whose weights depend only on `seed`, without disturbing global RNG."""
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(config)


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per dimension, the negative of appendix B's -1/2 (1 + log s^2 - mu^2 - s^2)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor | float = 0.0, logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) summed over the last dimension."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return (-0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar))).sum(-1)


def elbo_parts(model: VAE, x: torch.Tensor, *, estimator: str = "B", n_samples: int = 1,
               beta: float = 1.0, generator: torch.Generator | None = None,
               eps: torch.Tensor | None = None) -> ELBOParts:
    """The SGVB estimate of the ELBO for a minibatch x [B, H, W], with L = n_samples per datapoint.

    Estimator A (eq. 6): 1/L sum_l log p(x, z_l) - log q(z_l|x).
    Estimator B (eq. 7): -KL(q(z|x) || p(z)) + 1/L sum_l log p(x|z_l), the KL analytic (appendix B).
    `loss` is `minibatch_loss` at this beta, averaged over the batch.
    `eps` [L, B, D] replaces the draw of N(0, I) noise when given.
    """
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimator must be A or B, got {estimator!r}.")
    mu, logvar = model.encode(x)
    return elbo_parts_given(model, x, mu, logvar, estimator=estimator, n_samples=n_samples, beta=beta,
                            generator=generator, eps=eps)


def elbo_parts_given(model: VAE, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, *, estimator: str = "B",
                     n_samples: int = 1, beta: float = 1.0, generator: torch.Generator | None = None,
                     eps: torch.Tensor | None = None) -> ELBOParts:
    """`elbo_parts` from the encoder's output q(z|x) = N(mu, exp(logvar)) [B, D] for x: wake-sleep's wake phase
    passes it detached, so that its update reaches the decoder alone (vae/wake_sleep.py)."""
    if eps is None:
        z = model.reparameterize(mu, logvar, n_samples, generator=generator)
    else:  # noise drawn by the caller, [L, B, D]: data-parallel ranks share one draw for the global batch
        z = mu + torch.exp(0.5 * logvar) * eps
    log_px = model.log_px_given_z(x, z)  # [L, B]
    kl_per_dim = gaussian_kl_per_dim(mu, logvar)
    recon = log_px.mean(0)
    if estimator == "B":
        kl = kl_per_dim.sum(-1)
    else:
        kl = (log_normal(z, mu, logvar) - log_normal(z)).mean(0)  # Monte Carlo log q(z|x) - log p(z)
    parts = ELBOParts(elbo=recon - kl, recon=recon, kl=kl, kl_per_dim=kl_per_dim)
    parts.loss = minibatch_loss(parts, beta)
    return parts


def minibatch_loss(parts: ELBOParts, beta: float = 1.0, scale: float | None = None) -> torch.Tensor:
    """What the optimiser minimises: -(recon - beta * kl) per example, the negative of eq. 3's bound
    -KL + E_q[log p(x|z)] as estimated by eq. 7 (B) or eq. 6 (A), its KL weighted by beta (1: the paper's).

    Reduced over the minibatch's rows to their mean, or, with `scale`, to their sum times `scale`: a
    data-parallel rank passes world_size / global batch, so that the ranks' averaged gradients are
    those of the global batch's mean (vae.distributed).
    """
    per_example = -(parts.recon - beta * parts.kl)
    return per_example.mean() if scale is None else per_example.sum() * scale


def parameter_prior_loss(parameters, weight: float, n_train: int) -> torch.Tensor:
    """The weight-decay term of section 5 ("a small weight decay term corresponding to a prior
    p(theta) = N(0, I)"), which the trainer adds to `minibatch_loss`: -(weight / N) log p(theta) for the N
    training images, less its constant (P / 2N) log 2 pi, i.e. (weight / N) * sum(theta^2) / 2.

    Why 1 / N: the paper maximises sum_i ELBO(x_i) + log p(theta), which a minibatch of M estimates as
    sum_batch ELBO + (M / N) log p(theta); our loss is the batch's mean negative ELBO, that sum divided by
    -M. `weight` 1 is the paper's prior, w the prior N(0, I / w), 0 none. `parameters`: those whose
    prior it is (all the model's for AEVB; the decoder's or the encoder's for a wake-sleep phase)."""
    squares = torch.stack([p.pow(2).sum() for p in parameters]).sum()
    return squares * (0.5 * weight / n_train)


def log_weight_chunks(model: VAE, x: torch.Tensor, k: int, *, max_elements: int = 1 << 24,
                      generator: torch.Generator | None = None):
    """log p(x, z_k) - log q(z_k|x) for K draws z_k ~ q(z|x), yielded in chunks [n, B] so that no more than
    ~max_elements pixel values exist at once (K = 5000 on a batch would not fit otherwise)."""
    mu, logvar = model.encode(x)
    chunk = max(1, min(k, max_elements // max(1, x.shape[0] * model.config.n_pixels)))
    for start in range(0, k, chunk):
        z = model.reparameterize(mu, logvar, min(chunk, k - start), generator=generator)
        yield model.log_px_given_z(x, z) + log_normal(z) - log_normal(z, mu, logvar)


@torch.no_grad()
def iw_log_likelihood(model: VAE, x: torch.Tensor, k: int, *, max_elements: int = 1 << 24,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The importance-weighted bound of Burda et al. (2015) with K samples, per example [B].

    log p(x) >= log 1/K sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x); K = 1 is the ELBO (estimator A) and
    the bound rises towards log p(x) as K grows. Samples are drawn in chunks, combined by a running
    logsumexp, so that K = 5000 never holds more than ~max_elements pixel values at once.
    """
    if k < 1:
        raise ConfigError(f"the number of importance samples must be at least 1, got {k}.")
    running = None
    for log_w in log_weight_chunks(model, x, k, max_elements=max_elements, generator=generator):  # [n, B]
        chunk = torch.logsumexp(log_w, dim=0)
        running = chunk if running is None else torch.logaddexp(running, chunk)
    return running - math.log(k)
