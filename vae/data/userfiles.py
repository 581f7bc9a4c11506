"""A user's own images: an .npz, .npy, a folder or a .zip of PNGs, validated (DESIGN.md, "Data sets").

Every rule refuses with a `DataError` of one sentence naming the file and the problem: shape,
dtype, range, NaN, size caps, too few images, mismatched labels, pickled arrays (never loaded),
path traversal and zip bombs. uint8 is scaled to [0, 1]; RGB becomes grey, with a note.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from .dataset import DataError, Dataset, scale_uint8, split_indices
from .images import ImageError, ImageTooLarge, decode_image, luma

MAX_FILE_BYTES = 256 * 2**20  # a user file, or the unpacked total of a zip/npz (stops zip bombs)
MAX_IMAGES = 200_000
MAX_IMAGE_SIDE = 128  # pixels; larger images belong to a different kind of model
MIN_IMAGES = 10  # a train/test split needs a few images on each side
USER_TEST_FRACTION = 0.1
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def load_user_data(path: str | os.PathLike, *, display_name: str | None = None) -> Dataset:
    """An .npz, .npy, zip of PNGs or folder of PNGs, validated; `display_name` names it in messages."""
    path = Path(path)
    label = display_name or path.name
    if not path.exists():
        raise DataError(f"{label} does not exist.")
    if path.is_dir():
        parts = _read_image_folder(path, label)
    else:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DataError(f"{label} is {size / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit.")
        readers = {".npz": _read_npz, ".npy": _read_npy, ".zip": _read_image_zip}
        reader = readers.get((path.suffix or Path(label).suffix).lower())
        if reader is None:
            raise DataError(f"{label} is not a file this app reads; give an .npz, .npy, "
                            "a .zip of PNGs, or a folder of PNGs.")
        parts = reader(path, label)
    return _finish(label, str(path), **parts)


def _finish(label, source, x, y=None, x_test=None, y_test=None, class_names=None, notes=()) -> Dataset:
    if x_test is None:
        if len(x) < MIN_IMAGES:
            raise DataError(f"{label} holds {len(x)} image(s); it needs at least {MIN_IMAGES} images "
                            "to make a train/test split.")
        train, test = split_indices(y, max(1, round(USER_TEST_FRACTION * len(x))), len(x))
        x, x_test = x[train], x[test]
        if y is not None:
            y, y_test = y[train], y[test]
    return Dataset(label, x, y, x_test, y_test, class_names, source, tuple(notes))


@contextlib.contextmanager
def _numpy_errors(label: str):
    """Turn np.load's failures into one sentence; a pickle is refused, never run."""
    try:
        yield
    except DataError:
        raise
    except ValueError as err:
        if "pickle" in str(err):  # np.load(allow_pickle=False) refused an object array
            raise DataError(f"{label} holds pickled Python objects, which are never loaded because "
                            "unpickling can run code; save plain numeric arrays instead.") from err
        raise DataError(f"{label} is not a readable NumPy file ({err}).") from err
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{label} is not a readable NumPy file ({err}).") from err


def _read_npy(path: Path, label: str) -> dict:
    with _numpy_errors(label):
        arr = np.load(path, allow_pickle=False)
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{label} is an .npz archive, not an .npy array; rename it to .npz.")
    x, notes = _to_images(arr, label)
    return {"x": x, "notes": notes}


def _read_npz(path: Path, label: str) -> dict:
    _check_unpacked_size(path, label)  # np.load would inflate a compressed bomb
    with _numpy_errors(label), np.load(path, allow_pickle=False) as archive:
        if "x" not in archive.files:
            raise DataError(f"{label} has no array named 'x' (it holds {', '.join(archive.files) or 'nothing'}); "
                            "save images with np.savez(path, x=images).")
        arrays = {key: archive[key] for key in ("x", "y", "x_test", "y_test") if key in archive.files}
    x, notes = _to_images(arrays["x"], f"x in {label}")
    y = _to_labels(arrays["y"], len(x), f"y in {label}") if "y" in arrays else None
    if "x_test" not in arrays and "y_test" not in arrays:
        return {"x": x, "y": y, "notes": notes}
    if "x_test" not in arrays or (y is None) != ("y_test" not in arrays):
        raise DataError(f"{label} gives only part of a test split; give x_test, plus y_test exactly when y is given.")
    x_test, test_notes = _to_images(arrays["x_test"], f"x_test in {label}")
    if x_test.shape[1:] != x.shape[1:]:
        raise DataError(f"x_test in {label} holds {x_test.shape[1]}x{x_test.shape[2]} images "
                        f"but x holds {x.shape[1]}x{x.shape[2]} ones.")
    if len(x) + len(x_test) > MAX_IMAGES:
        raise DataError(f"{label} holds {len(x) + len(x_test)} images, over the {MAX_IMAGES} limit.")
    y_test = _to_labels(arrays["y_test"], len(x_test), f"y_test in {label}") if y is not None else None
    return {"x": x, "y": y, "x_test": x_test, "y_test": y_test, "notes": notes + test_notes}


def _check_unpacked_size(path: Path, label: str) -> None:
    # zipfile never inflates a member past its recorded file_size, so their sum bounds the work.
    try:
        with zipfile.ZipFile(path) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile as err:
        raise DataError(f"{label} is not a valid zip archive.") from err
    if unpacked > MAX_FILE_BYTES:
        raise DataError(f"{label} unpacks to {unpacked / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit.")


def _to_images(arr: np.ndarray, what: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Validated float32 [N, H, W] in [0, 1], and notes on what was converted."""
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{what} has dtype {arr.dtype}; expected numbers (uint8 0-255, or floats in [0, 1]).")
    arr = _as_image_stack(arr, what)
    n, h, w = arr.shape[:3]
    if arr.size == 0:
        raise DataError(f"{what} holds no images (shape {arr.shape}).")
    if n > MAX_IMAGES:
        raise DataError(f"{what} holds {n} images, over the {MAX_IMAGES} limit.")
    if max(h, w) > MAX_IMAGE_SIDE:
        raise DataError(f"{what} holds {h}x{w} images; at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} are accepted.")
    x = _to_unit_float(arr, what)
    if x.ndim == 3:
        return x, ()
    grey = luma(x)
    np.clip(grey, 0, 1, out=grey)  # float rounding can step just past 1
    kind = "RGB" if x.shape[-1] == 3 else "RGBA"
    return grey, (f"converted {x.shape[-1]}-channel {kind} images in {what} to grey",)


def _as_image_stack(arr: np.ndarray, what: str) -> np.ndarray:
    """[N, H, W], or [N, H, W, 3|4] still to be turned grey."""
    s = arr.shape
    if arr.ndim == 2 and s[1] > 0 and math.isqrt(s[1]) ** 2 == s[1]:
        return arr.reshape(s[0], math.isqrt(s[1]), math.isqrt(s[1]))  # flattened square images
    if arr.ndim == 3 or (arr.ndim == 4 and s[3] in (3, 4)):
        return arr
    if arr.ndim == 4 and s[3] == 1:
        return arr[..., 0]
    if arr.ndim == 4 and s[1] == 1:
        return arr[:, 0]  # channels-first, as PyTorch stores images
    raise DataError(f"{what} has shape {s}; expected images as [N, H, W] (or [N, D] with D a square number).")


def _to_unit_float(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype.kind == "b":
        return arr.astype(np.float32)
    if arr.dtype.kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{what} holds integers from {lo} to {hi}; expected pixel values 0-255.")
        return scale_uint8(arr.astype(np.uint8, copy=False))
    if not np.isfinite(arr).all():
        raise DataError(f"{what} contains NaN or infinite values.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 1:
        hint = "; it looks like 0-255 pixels, so divide by 255 first" if lo >= 0 and hi <= 255 else ""
        raise DataError(f"{what} holds values from {lo:g} to {hi:g}, but float pixels must lie in [0, 1]{hint}.")
    return arr.astype(np.float32)


def _to_labels(y: np.ndarray, n: int, what: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{what} has shape {y.shape} but there are {n} images; expected one label per image.")
    if y.dtype.kind == "f":
        if not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise DataError(f"{what} holds labels that are not whole numbers; expected class numbers 0, 1, 2, ...")
    elif y.dtype.kind not in "biu":
        raise DataError(f"{what} has dtype {y.dtype}; expected integer class labels.")
    if y.size and y.min() < 0:
        raise DataError(f"{what} holds negative labels; expected class numbers 0, 1, 2, ...")
    return y.astype(np.int64)


def _read_image_folder(folder: Path, label: str) -> dict:
    files = (p for p in folder.rglob("*") if p.is_file())
    entries = [(p.relative_to(folder).as_posix(), p.stat().st_size, p.read_bytes) for p in files]
    return _decode_images(sorted(entries, key=lambda e: e[0]), label)


def _read_image_zip(path: Path, label: str) -> dict:
    # Members are read in memory, never extracted, so no name can write outside.
    _check_unpacked_size(path, label)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            for info in infos:
                norm = info.filename.replace("\\", "/")
                if norm.startswith("/") or ".." in norm.split("/") or norm[1:2] == ":":
                    raise DataError(f"{label} contains the unsafe path {info.filename}; "
                                    "member names must stay inside the archive.")
            entries = [(i.filename, i.file_size, functools.partial(zf.read, i)) for i in infos if not i.is_dir()]
            return _decode_images(sorted(entries, key=lambda e: e[0]), label)
    except (zipfile.BadZipFile, zlib.error, RuntimeError) as err:  # RuntimeError: an encrypted member
        raise DataError(f"{label} is not a readable zip file ({err}).") from err


def _decode_images(entries: list, label: str) -> dict:
    """Images from (name, size, read-bytes) entries in name order; labels from their folders."""
    wanted, total = [], 0
    for name, size, read in entries:
        parts = PurePosixPath(name).parts
        if parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts):
            continue  # macOS resource forks, .DS_Store, hidden folders: not the user's images
        if not name.lower().endswith(_IMAGE_SUFFIXES):
            raise DataError(f"{label} contains {name}; only PNG or JPEG images are accepted.")
        wanted.append((name, read))
        total += size
    if total > MAX_FILE_BYTES:
        raise DataError(f"{label} holds {total / 2**20:.0f} MB of images, over the {MAX_FILE_BYTES // 2**20} MB limit.")
    if not wanted:
        raise DataError(f"{label} holds no PNG or JPEG images.")
    if len(wanted) > MAX_IMAGES:
        raise DataError(f"{label} holds {len(wanted)} images, over the {MAX_IMAGES} limit.")
    images, colour, first = [], False, None
    for name, read in wanted:
        pixels, size, mode = _decode_one(name, read, label)
        if first is None:
            first = (name, size)
            if pixels is None:
                raise DataError(f"{name} in {label} is {size[0]}x{size[1]}; at most "
                                f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} images are accepted.")
        elif size != first[1]:
            raise DataError(f"{name} in {label} is {size[0]}x{size[1]} but the first image ({first[0]}) is "
                            f"{first[1][0]}x{first[1][1]}; all images must be the same size.")
        colour |= mode not in _GREY_MODES
        images.append(pixels)
    parts = {"x": np.stack(images), "notes": (f"converted colour images in {label} to grey",) if colour else ()}
    # Class folders (cat/1.png, dog/1.png) give labels; one shared folder is no labelling.
    folders = [PurePosixPath(name).parent.name for name, _ in wanted]
    if all(folders) and len(set(folders)) >= 2:
        class_names = tuple(sorted(set(folders)))
        index = {c: i for i, c in enumerate(class_names)}
        parts.update(y=np.array([index[f] for f in folders], np.int64), class_names=class_names)
    return parts


def _decode_one(name: str, read, label: str) -> tuple[np.ndarray | None, tuple[int, int], str]:
    """(pixels, (width, height), the file's mode); pixels None for an image over MAX_IMAGE_SIDE, which the
    caller refuses by its size."""
    try:
        image = decode_image(read(), f"{name} in {label}", max_side=MAX_IMAGE_SIDE)
    except ImageTooLarge as err:
        return None, err.size, ""
    except ImageError as err:
        raise DataError(str(err)) from err
    return image.pixels, (image.pixels.shape[1], image.pixels.shape[0]), image.mode
