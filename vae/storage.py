"""Where the project keeps files, and how it writes them: atomically, and never as code.

Every derived result of a checkpoint (DESIGN.md: keyed by the SHA-256 of its file) lives in
`<runs>/cache/<sha256>/`, under a name that one function here gives, so a writer, a reader and a
"is it cached yet?" check cannot disagree about it. JSON holds numbers only; arrays are `.npz` read
with `allow_pickle=False`. A damaged entry is removed and recomputed, never trusted.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np


# -- atomic writes ------------------------------------------------------------------------
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a reader (or a crash) sees the old file or the new one, never half.

    Temp file in the same folder, fsync, os.replace, then fsync the folder so the rename itself is durable.
    On any error (disk full, no permission) the temp file is removed and the old file is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a checkpoint is an ordinary readable file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- a checkpoint's derived results -----------------------------------------------------------
def cache_dir(runs_root: str | os.PathLike, sha256: str) -> Path:
    """Derived results of one checkpoint: `<runs>/cache/<sha256>/` (DESIGN.md: keyed by the file's hash)."""
    return Path(runs_root) / "cache" / sha256


def projection_path(runs_root, sha256: str, method: str, split: str, n_points: int, seed: int = 0) -> Path:
    return cache_dir(runs_root, sha256) / f"projection-{method}-{split}-{n_points}-{seed}.npz"


def iw_curve_path(runs_root, sha256: str, n_points: int, ks, seed: int = 0) -> Path:
    ks_tag = "-".join(str(k) for k in sorted({int(k) for k in ks}))
    return cache_dir(runs_root, sha256) / f"iw-curve-{n_points}-{seed}-k{ks_tag}.json"


def iw_estimate_path(runs_root, sha256: str, n_points: int, k: int, seed: int = 0) -> Path:
    return cache_dir(runs_root, sha256) / f"iw-mean-{n_points}-{seed}-k{k}.json"


def study_cell_path(runs_root, sha256: str, *, weights: str, batch: int, repeats: int, n_samples: int,
                    seed: int = 0) -> Path:
    return cache_dir(runs_root, sha256) / f"estimator-cell-{weights}-b{batch}-r{repeats}-L{n_samples}-s{seed}.json"


def reference_path(runs_root, sha256: str, k: int, n: int, seed: int = 0) -> Path:
    return cache_dir(runs_root, sha256) / f"iw-reference-{n}-{seed}-k{k}.json"


# -- JSON and array entries -------------------------------------------------------------------
def read_json_cache(path: Path):
    """A value cached as JSON, or None when there is none; a damaged file is removed (recomputed, never
    trusted)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return None


def write_json_cache(path: Path, value) -> None:
    """Keep `value` as JSON (numbers only, never code) at `path`, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(value).encode())


def read_array_cache(path: Path, *names: str) -> tuple[np.ndarray, ...] | None:
    """The named arrays of an `.npz` entry, or None when there is none; a damaged file is removed."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return tuple(f[name] for name in names)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        path.unlink(missing_ok=True)
        return None


def write_array_cache(path: Path, **arrays: np.ndarray) -> None:
    """Keep arrays as an `.npz` at `path`, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
