"""Images as a person sees them: tiles in a grid, enlarged without blur, as 8-bit pixels.

Decoded images are float32 arrays in [0, 1] shaped [..., H, W]; `tile` and `upscale` turn them into one
readable picture (nearest-neighbour, never a blur). Plain numpy: training's snapshots use it too.
"""
from __future__ import annotations

import numpy as np


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
