"""Files a user can take away: the interpolation as an animated GIF, a grid as a PNG, map coordinates as CSV.

Plain numpy and PIL; the pages offer them through download buttons.
"""
from __future__ import annotations

import csv
import io

import numpy as np
from PIL import Image

from .pictures import display_scale, to_uint8, upscale


def png_bytes(image: np.ndarray) -> bytes:
    """A grey image in [0, 1] (or uint8) as a lossless PNG."""
    image = np.asarray(image)
    pixels = image if image.dtype == np.uint8 else to_uint8(image)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def gif_bytes(frames: np.ndarray, *, target: int = 168, frame_ms: int = 80, bounce: bool = True) -> bytes:
    """Frames [N, H, W] in [0, 1] as a looping GIF, enlarged nearest-neighbour to about `target` pixels
    tall. `bounce` plays the path there and back, so the loop has no jump."""
    frames = np.asarray(frames, np.float32)
    if frames.ndim != 3 or len(frames) == 0:
        raise ValueError(f"a GIF needs frames shaped [N, H, W], got {frames.shape}.")
    sequence = np.concatenate([frames, frames[-2:0:-1]]) if bounce and len(frames) > 2 else frames
    factor = display_scale(frames.shape[1], target)
    images = [Image.fromarray(to_uint8(upscale(f, factor)), mode="L") for f in sequence]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()


def coordinates_csv(index: np.ndarray, coords: np.ndarray, mu: np.ndarray, labels: np.ndarray | None,
                    label_name, frames: np.ndarray | None = None) -> bytes:
    """One row per point: its row in the split, label and class name (and, for a video's frames, its frame),
    the map's x and y, and the posterior mean in every latent dimension (so the map can be redrawn or
    re-projected elsewhere)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    d = mu.shape[1]
    writer.writerow(["index", "label", "class", *(["frame"] if frames is not None else []), "x", "y",
                     *(f"mu_{k}" for k in range(d))])
    for row, (x, y) in zip(np.asarray(index), np.asarray(coords), strict=True):
        label = "" if labels is None else int(labels[row])
        name = "" if labels is None else label_name(int(labels[row]))
        frame = [int(frames[row])] if frames is not None else []
        writer.writerow([int(row), label, name, *frame, f"{x:.5f}", f"{y:.5f}", *(f"{v:.5f}" for v in mu[row])])
    return buffer.getvalue().encode()
