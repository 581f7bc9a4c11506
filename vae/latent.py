"""What a model does to points of its latent space: decode, reconstruct, sample the prior, walk a path,
lay out the paper's manifold grid (figure 4) and traverse one dimension at a time.

Plain numpy/torch functions; a page asks for arrays and draws them. Decoded images are float32 arrays in
[0, 1] shaped [N, H, W].
"""
from __future__ import annotations

import numpy as np
import torch

from .model import VAE


def _tensor(z, model: VAE) -> torch.Tensor:
    return torch.as_tensor(np.asarray(z, dtype=np.float32), device=next(model.parameters()).device)


@torch.no_grad()
def decode(model: VAE, z) -> np.ndarray:
    """Decoded means E[x|z] for each row of z: float32 [N, H, W] in [0, 1]."""
    return model.decode_mean(_tensor(z, model)).float().cpu().numpy()


@torch.no_grad()
def reconstruct(model: VAE, x) -> np.ndarray:
    """Images through the posterior mean and back."""
    return model(_tensor(x, model)).float().cpu().numpy()


def prior_samples(model: VAE, n: int, *, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """Decode z ~ N(0, t^2 I): temperature below 1 trades variety for cleaner images."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.config.latent_dim, generator=gen) * temperature
    return decode(model, z.numpy())


def interpolate(z0, z1, n: int, kind: str = "linear") -> np.ndarray:
    """n points from z0 to z1 [n, D]: straight ("linear") or along the great circle ("spherical", slerp).

    Slerp keeps the norm of high-dimensional Gaussian samples typical, where a straight line passes
    through the low-density region near the origin.
    """
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None]
    if kind == "linear":
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    if kind != "spherical":
        raise ValueError(f"path kind must be linear or spherical, got {kind!r}.")
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    cos = np.clip(z0 @ z1 / max(n0 * n1, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6 or n0 < 1e-12 or n1 < 1e-12:  # (anti-)parallel or at the origin: a straight line is the arc
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    path = (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)
    return path.astype(np.float32)


def manifold_grid(model: VAE, n: int = 15, *, dims: tuple[int, int] = (0, 1), base=None,
                  edge: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The learned manifold as in the paper's figure 4: a grid on the unit square mapped through the
    Gaussian inverse CDF, decoded. For a latent above 2-D the grid is a slice through `base` along
    `dims`. Returns (images [n, n, H, W] with row 0 at the top, grid values [n])."""
    d = model.config.latent_dim
    if d < 2:
        raise ValueError("the manifold grid needs a latent of at least 2 dimensions.")
    if dims[0] == dims[1] or not all(0 <= k < d for k in dims):
        raise ValueError(f"choose two different latent dimensions between 0 and {d - 1}.")
    # The Gaussian inverse CDF through torch (already loaded), not scipy.stats: that import alone cost a
    # cold server 0.8-1.4 s before its first page.
    values = torch.special.ndtri(torch.linspace(edge, 1 - edge, n, dtype=torch.float64)).numpy()
    base = np.zeros(d, np.float32) if base is None else np.asarray(base, np.float32)
    z = np.tile(base, (n, n, 1))
    z[:, :, dims[0]] = values[None, :]  # x axis: columns
    z[:, :, dims[1]] = values[::-1, None]  # y axis: rows, largest at the top
    images = decode(model, z.reshape(n * n, d))
    return images.reshape(n, n, *images.shape[1:]), values.astype(np.float32)


def traversals(model: VAE, base, dims, *, n: int = 9, span: float = 3.0) -> np.ndarray:
    """One row per latent dimension: `base` with that dimension swept over [-span, span]. [len(dims), n, H, W]."""
    base = np.asarray(base, np.float32)
    values = np.linspace(-span, span, n, dtype=np.float32)
    z = np.tile(base, (len(dims), n, 1))
    for row, dim in enumerate(dims):
        z[row, :, dim] = values
    images = decode(model, z.reshape(-1, base.shape[0]))
    return images.reshape(len(dims), n, *images.shape[1:])


def dims_by_kl(kl_per_dim) -> list[int]:
    """Latent dimensions, the most informative (largest KL) first."""
    return [int(i) for i in np.argsort(-np.asarray(kl_per_dim), kind="stable")]
