"""2-D projections for the map: PCA at once; UMAP and t-SNE in the background process, shown when ready.

Results land in the runs folder's cache (keyed by the checkpoint's SHA-256), so
the slow methods run once per checkpoint, ever, whichever session asked first.
"""
from __future__ import annotations

import numpy as np

from vae.checkpoint import Checkpoint
from vae.projections import cached_projection
from vae.storage import projection_path

from . import state
from .background import rerun_when_done, resubmit, task, worker

NAMES = {"latent": "the latent itself", "pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}


def _is_cached(ck: Checkpoint, mu: np.ndarray, method: str, split: str) -> bool:
    return projection_path(state.settings().runs_root, ck.sha256, method, split, len(mu)).exists()


def projection_or_pca(ck: Checkpoint, enc, method: str, split: str):
    """(coords, index, note): the asked-for projection, or PCA with a note while it is computed."""
    root = state.settings().runs_root
    if method in ("latent", "pca") or _is_cached(ck, enc.mu, method, split):
        coords, index = cached_projection(root, ck.sha256, enc.mu, method, split=split)
        return coords, index, None
    # The process encodes the split itself (the same rows, in the same order): nothing is sent but names.
    key, work = (ck.sha256, method, split, len(enc.mu)), task("projection", ck, method=method, split=split)
    future = worker().submit(key, work)
    if future.done() and future.exception() is None:  # finished, yet not in the cache: emptied meanwhile
        future = resubmit(key, work)
    if future.done() and future.exception() is not None:
        note = f"{NAMES[method]} failed ({future.exception()}); showing PCA."
    else:
        note = (f"{NAMES[method]} is being computed in the background (once per checkpoint, then cached); "
                "PCA is shown meanwhile and the map switches by itself.")
        rerun_when_done(future)
    coords, index = cached_projection(root, ck.sha256, enc.mu, "pca", split=split)
    return coords, index, note
