"""The Compare page's slow column: each checkpoint's importance-weighted log-likelihood on the same test
images, computed once (in the background process) and kept in the checkpoint's cache folder.

The IW bound with K samples (Burda et al. 2015) is tighter than the ELBO of eq. 3 and rises towards
log p(x) as K grows, so it ranks checkpoints whose posteriors differ in quality more fairly.
"""
from __future__ import annotations

from .checkpoint import Checkpoint
from .data import Dataset
from .evaluate import evaluation_inputs, rounded_iw
from .metrics import iw_estimate
from .storage import iw_estimate_path, read_json_cache, write_json_cache

IW_KEYS = ("iw_log_likelihood", "iw_log_likelihood_se")


def read_iw_estimate(runs_root, sha256: str, n_points: int, k: int) -> dict | None:
    """A cached `cached_iw_estimate` ({"iw_log_likelihood", "iw_log_likelihood_se"}), or None (never
    computes). A file holding anything else goes, so it is recomputed: a damaged file, and the plain
    number (no standard error) that versions before the SE wrote."""
    path = iw_estimate_path(runs_root, sha256, n_points, k)
    value = read_json_cache(path)
    if _is_iw_estimate(value):
        return {key: float(value[key]) for key in IW_KEYS}
    if value is not None:
        path.unlink(missing_ok=True)
    return None


def _is_iw_estimate(value) -> bool:
    return (isinstance(value, dict) and set(value) == set(IW_KEYS)
            and all(isinstance(value[key], (int, float)) and not isinstance(value[key], bool) for key in IW_KEYS))


def cached_iw_estimate(runs_root, checkpoint: Checkpoint, data: Dataset, n_points: int, k: int) -> dict:
    """The mean IW log-likelihood with K samples on the first n_points test images (as the run saw them) and
    its standard error, rounded ({"iw_log_likelihood", "iw_log_likelihood_se"}, see `rounded_iw`), kept as
    JSON in the checkpoint's cache folder so that it runs once: the Compare page's slow column."""
    value = read_iw_estimate(runs_root, checkpoint.sha256, n_points, k)
    if value is None:
        x = evaluation_inputs(checkpoint, data)[:n_points]
        value = rounded_iw(iw_estimate(checkpoint.model, x, k))
        write_json_cache(iw_estimate_path(runs_root, checkpoint.sha256, n_points, k), value)
    return value
