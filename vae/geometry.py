"""Linear algebra on clouds of latent points (numpy only): the principal plane, and orthogonal Procrustes.

The principal plane is the project's one 2-D PCA: the map's "pca" projection, a path drawn on the map,
a snapshot's picture of a latent above 2-D, and Compare's shared plane all use `principal_plane`;
a run's snapshots are put in one frame by `align_chain`.

A VAE's latent space has no preferred orientation: the prior N(0, I) is isotropic, so flipping or
permuting axes of z changes nothing in eq. 3's bound, and a rotation changes it only through the
diagonal posterior's axes. Two runs therefore lay the same digits out in (nearly) arbitrarily rotated
and reflected maps. Orthogonal Procrustes finds the rotation/reflection R (and shift) that best carries
one run's posterior means onto the other's for the same images; it never stretches, so what remains
different is real.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Alignment:
    rotation: np.ndarray  # [D, D] orthogonal: source_centred @ rotation ~ target_centred
    source_mean: np.ndarray  # [D]
    target_mean: np.ndarray  # [D]
    residual: float  # share of the target's spread left unexplained after alignment: 0 is perfect, ~1 unrelated

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Carry points of the source space (posterior means, any z) into the target's frame."""
        return (np.asarray(points, np.float64) - self.source_mean) @ self.rotation + self.target_mean

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Carry points of the target's frame back into the source space."""
        return (np.asarray(points, np.float64) - self.target_mean) @ self.rotation.T + self.source_mean


def procrustes(source: np.ndarray, target: np.ndarray) -> Alignment:
    """The orthogonal R minimising ||(source - mean) R - (target - mean)||_F (Schönemann 1966):
    with U S V^T the SVD of source_c^T target_c, R = U V^T. Rows are the same images in both."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    if source.shape != target.shape or source.ndim != 2:
        raise ValueError(f"Procrustes needs two maps of the same points and size, got {source.shape} and "
                         f"{target.shape}.")
    if len(source) < 2:
        raise ValueError("Procrustes needs at least two points.")
    ms, mt = source.mean(0), target.mean(0)
    sc, tc = source - ms, target - mt
    u, _, vt = np.linalg.svd(sc.T @ tc)
    rotation = u @ vt
    spread = float((tc ** 2).sum())
    residual = float(((sc @ rotation - tc) ** 2).sum() / spread) if spread > 0 else 0.0
    return Alignment(rotation=rotation, source_mean=ms, target_mean=mt, residual=residual)


def align_to(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, Alignment]:
    """`source` moved into `target`'s frame, and the alignment that did it."""
    alignment = procrustes(source, target)
    return alignment.apply(source).astype(np.float32), alignment


def plane(mu: np.ndarray) -> np.ndarray:
    """2-D coordinates of posterior means: the latent itself when D <= 2, else its two principal axes."""
    mu = np.asarray(mu, np.float64)
    if mu.shape[1] == 1:
        return np.column_stack([mu[:, 0], np.zeros(len(mu))]).astype(np.float32)
    if mu.shape[1] == 2:
        return mu.astype(np.float32)
    return project_onto(mu, *principal_plane(mu))


def principal_plane(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, axes [D, 2]) of the reference's two principal axes, to project other points the same way.

    Each axis's sign is fixed so that its largest entry is positive (scikit-learn's PCA convention), so a
    map drawn twice, or cached by an older version that used scikit-learn, never flips."""
    reference = np.asarray(reference, np.float64)
    mean = reference.mean(0)
    _, _, vt = np.linalg.svd(reference - mean, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])
    return mean, (axes * signs[:, None]).T


def project_onto(points: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Points carried onto a principal plane: float32 [N, 2]."""
    return ((np.asarray(points, np.float64) - mean) @ axes).astype(np.float32)


def align_chain(maps: list[np.ndarray]) -> list[np.ndarray]:
    """Every map carried onto the one before it, already carried (the first is kept as it is): each frame
    rotates only as much as the space changed since the last one, and a frame's place never depends on the
    frames after it, so a sequence that grows (a run still training) keeps the frames it had."""
    out: list[np.ndarray] = []
    for m in maps:
        out.append(np.asarray(m, np.float32) if not out else align_to(m, out[-1])[0])
    return out
