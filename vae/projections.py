"""2-D maps of posterior means: the latent itself, PCA, UMAP or t-SNE, cached on disk by checkpoint
identity (UMAP and t-SNE cost seconds to minutes on two cores: they run once per checkpoint, ever), and
two models' maps of the same images put into one frame (Compare).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Alignment, align_to, plane, principal_plane, project_onto
from .storage import projection_path, read_array_cache, write_array_cache

PROJECTIONS = ("latent", "pca", "umap", "tsne")
SUBSAMPLE = {"umap": 20_000, "tsne": 5_000}  # slow methods run on a fixed, seeded subsample


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
        coords = project_onto(sample, *principal_plane(sample))
    elif method == "tsne":
        from sklearn.manifold import TSNE
        tsne = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, len(sample) - 1))
        coords = tsne.fit_transform(sample)
    else:
        import umap  # imported on demand: its numba JIT takes seconds the first time
        coords = umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(sample)
    return coords.astype(np.float32), index


def pca_with_path(mu: np.ndarray, path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA fitted on the posterior means, applied to both them and a latent path, so the path can be
    drawn on the map. A 2-D latent is returned as it is."""
    if mu.shape[1] <= 2:
        return project(mu, "latent")[0], project(np.asarray(path, np.float32), "latent")[0]
    mean, axes = principal_plane(mu)
    return project_onto(mu, mean, axes), project_onto(path, mean, axes)


def cached_projection(runs_root, sha256: str, mu: np.ndarray, method: str, *, split: str = "test",
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`project`, remembered on disk so UMAP and t-SNE run once per checkpoint, ever."""
    path = projection_path(runs_root, sha256, method, split, len(mu), seed)
    if (cached := read_array_cache(path, "coords", "index")) is not None:
        return cached
    coords, index = project(mu, method, seed=seed)
    write_array_cache(path, coords=coords, index=index)
    return coords, index


@dataclass(frozen=True)
class AlignedMaps:
    reference: np.ndarray  # [N, 2] the reference model's map
    other: np.ndarray  # [N, 2] the other model's map, in the reference's frame
    latent_alignment: Alignment | None  # other's latent -> reference's latent, when the sizes match
    residual: float  # of the alignment used (see Alignment.residual)
    method: str  # in words, for the page


def aligned_maps(mu_reference: np.ndarray, mu_other: np.ndarray) -> AlignedMaps:
    """Two models' posterior means for the same images as two maps in one frame.

    Same latent size: Procrustes in the latent space itself, then (beyond 2-D) one PCA plane fitted on
    the reference and applied to both. Different sizes: each model's own PCA plane, the other's rotated
    onto the reference's (only the 2-D pictures can be aligned then)."""
    mu_reference, mu_other = np.asarray(mu_reference, np.float64), np.asarray(mu_other, np.float64)
    if mu_reference.shape == mu_other.shape:
        moved, alignment = align_to(mu_other, mu_reference)
        if mu_reference.shape[1] <= 2:
            ref, other = plane(mu_reference), plane(moved)
            method = "Procrustes rotation of the second latent space onto the first"
        else:
            mean, axes = principal_plane(mu_reference)
            ref, other = project_onto(mu_reference, mean, axes), project_onto(moved, mean, axes)
            method = "Procrustes rotation in the latent space, then the first model's PCA plane for both"
        return AlignedMaps(ref, other, alignment, alignment.residual, method)
    ref = plane(mu_reference)
    other, alignment = align_to(plane(mu_other), ref)
    return AlignedMaps(ref, other, None, alignment.residual,
                       "each model's PCA plane, the second rotated onto the first (the latent sizes differ)")
