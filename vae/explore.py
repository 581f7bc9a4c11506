"""What the explorer's pages draw: encodings, 2-D projections, paths, grids, traversals, image tiles.

Plain numpy/torch functions; a page asks for arrays and draws them. Decoded
images are float32 arrays in [0, 1] shaped [N, H, W]; `tile` and `upscale` turn
them into one readable picture (nearest-neighbour, never a blur).
"""
from __future__ import annotations

import numpy as np
import torch

from .model import VAE
from .storage import projection_path, read_array_cache, write_array_cache

PROJECTIONS = ("latent", "pca", "umap", "tsne")
SUBSAMPLE = {"umap": 20_000, "tsne": 5_000}  # slow methods run on a fixed, seeded subsample


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


# -- 2-D projections, cached on disk by checkpoint identity ---------------------------------
def subsample_index(n: int, limit: int | None, seed: int = 0) -> np.ndarray:
    if limit is None or n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def project(mu: np.ndarray, method: str, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2-D coordinates of posterior means: (coords float32 [M, 2], row index [M] into mu).

    "latent" is the space itself (a 1-D latent is drawn against zero); PCA uses every point; UMAP and
    t-SNE a seeded subsample, since they cost seconds to minutes on two cores.
    """
    if method not in PROJECTIONS:
        raise ValueError(f"projection must be one of {', '.join(PROJECTIONS)}, got {method!r}.")
    mu = np.asarray(mu, np.float32)
    if method == "latent" or mu.shape[1] == 1:
        if mu.shape[1] > 2:
            raise ValueError(f"the latent has {mu.shape[1]} dimensions; choose PCA, UMAP or t-SNE.")
        coords = mu if mu.shape[1] == 2 else np.column_stack([mu[:, 0], np.zeros(len(mu), np.float32)])
        return coords.astype(np.float32), np.arange(len(mu))
    if mu.shape[1] == 2:
        return mu, np.arange(len(mu))
    index = subsample_index(len(mu), SUBSAMPLE.get(method), seed)
    sample = mu[index]
    if method == "pca":
        from sklearn.decomposition import PCA
        coords = PCA(n_components=2, random_state=seed).fit_transform(sample)
    elif method == "tsne":
        from sklearn.manifold import TSNE
        coords = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, len(sample) - 1)).fit_transform(sample)
    else:
        import umap  # imported on demand: its numba JIT takes seconds the first time
        coords = umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(sample)
    return coords.astype(np.float32), index


def pca_with_path(mu: np.ndarray, path: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PCA fitted on the posterior means, applied to both them and a latent path, so the path can be
    drawn on the map. A 2-D latent is returned as it is."""
    if mu.shape[1] <= 2:
        return project(mu, "latent")[0], project(np.asarray(path, np.float32), "latent")[0]
    from sklearn.decomposition import PCA
    pca = PCA(n_components=2, random_state=seed).fit(mu)
    return pca.transform(mu).astype(np.float32), pca.transform(path).astype(np.float32)


def cached_projection(runs_root, sha256: str, mu: np.ndarray, method: str, *, split: str = "test",
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`project`, remembered on disk so UMAP and t-SNE run once per checkpoint, ever."""
    path = projection_path(runs_root, sha256, method, split, len(mu), seed)
    if (cached := read_array_cache(path, "coords", "index")) is not None:
        return cached
    coords, index = project(mu, method, seed=seed)
    write_array_cache(path, coords=coords, index=index)
    return coords, index


# -- pictures --------------------------------------------------------------------------------
def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement: each pixel becomes a factor x factor block (no blur)."""
    return np.repeat(np.repeat(image, factor, axis=-2), factor, axis=-1)


def tile(images: np.ndarray, ncols: int | None = None, *, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Lay out images [..., H, W] in a grid with `pad` pixels of `fill` between them.

    A 4-D array [rows, cols, H, W] keeps its rows; a 3-D array is wrapped at `ncols`.
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        rows, cols = images.shape[:2]
        images = images.reshape(rows * cols, *images.shape[2:])
    else:
        cols = ncols or int(np.ceil(np.sqrt(len(images))))
        rows = int(np.ceil(len(images) / cols))
    h, w = images.shape[-2:]
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), fill, np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img
    return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def display_scale(height: int, target: int = 112) -> int:
    """An integer zoom that shows an image about `target` pixels tall: 28 -> 4x, 8 -> 14x."""
    return max(1, round(target / max(1, height)))
