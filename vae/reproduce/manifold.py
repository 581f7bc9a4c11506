"""Figure 4: the learned 2-D manifold, decoded over a grid through the Gaussian inverse CDF, as one image."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..checkpoint import load_checkpoint
from ..latent import manifold_grid
from ..pictures import tile, to_uint8
from ..storage import atomic_write_bytes
from .plan import MANIFOLD_PNG, reproduction_dir


def manifold_picture(model, n: int = 20) -> np.ndarray:
    """Figure 4 as one uint8 greyscale image: the decoded grid through the Gaussian inverse CDF
    (the existing `manifold_grid`), tiled with one-pixel white gaps."""
    images, _ = manifold_grid(model, n)
    return to_uint8(tile(images, pad=1))


def write_manifold_png(runs_root: str | os.PathLike, name: str, run_name: str, n: int = 20) -> Path:
    from PIL import Image  # only the command line writes PNGs; the page draws the array itself

    picture = manifold_picture(load_checkpoint(Path(runs_root) / run_name).model, n)
    buffer = io.BytesIO()
    Image.fromarray(picture, mode="L").save(buffer, format="PNG")
    path = reproduction_dir(runs_root, name) / MANIFOLD_PNG
    atomic_write_bytes(path, buffer.getvalue())
    return path
