"""One image file's bytes as pixels: the single decoder behind a user's folder or zip of images and the
"Your input" upload. PIL reads the file; nothing in it is ever run. The size is checked from the header,
before the pixels are decoded, so a small file that claims to be huge (a decompression bomb) costs nothing.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

# ITU-R 601 luma: the weights PIL's convert("L") uses, so an array's colours turn grey as a file's do.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class ImageError(ValueError):
    """An image that cannot be read; str(err) is one sentence naming it."""


class ImageTooLarge(ImageError):
    """An image over the caller's size limit, refused before decoding; `size` is its (width, height)."""

    def __init__(self, message: str, size: tuple[int, int]):
        super().__init__(message)
        self.size = size


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # float32 in [0, 1]: [H, W] grey, or [H, W, 4] RGBA when transparency was kept
    mode: str  # the file's own PIL mode ("L", "RGB", "I;16", ...): tells a colour file from a grey one


def decode_image(data: bytes, name: str, *, max_side: int, keep_alpha: bool = False,
                 upright: bool = False) -> DecodedImage:
    """Grey pixels of a PNG or JPEG (16-bit grey kept at full depth); with `upright`, turned as EXIF says a
    photo is (an upload from a phone); with `keep_alpha`, an image with transparency comes back as RGBA,
    since its alpha may be the drawing."""
    from PIL import Image, ImageOps  # imported late: keeps `import vae` light
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            if max(img.size) > max_side:
                raise ImageTooLarge(f"{name} is {img.size[0]}x{img.size[1]} pixels; at most {max_side} on a side.",
                                    img.size)
            if upright:
                img = ImageOps.exif_transpose(img)  # a phone photo stores "rotate me" beside its pixels
            if img.mode == "I" or img.mode.startswith("I;16"):  # 16-bit grey: convert("L") would clip it
                return DecodedImage(np.clip(np.asarray(img, np.float32) / 65535, 0, 1), mode)
            has_alpha = keep_alpha and (img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info)
            pixels = np.asarray(img.convert("RGBA" if has_alpha else "L"), np.float32) / np.float32(255)
            return DecodedImage(pixels, mode)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageError(f"{name} is not a readable image ({err}).") from err


def luma(rgb: np.ndarray) -> np.ndarray:
    """Grey levels of [..., 3+] colour pixels (alpha, if any, ignored)."""
    return np.asarray(rgb, np.float32)[..., :3] @ LUMA
