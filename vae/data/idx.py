"""LeCun's IDX files (MNIST, Fashion-MNIST): where they are looked for, how they are read, and how they are
fetched, checksum first, where a network exists (DESIGN.md, "Data sets": first match wins).
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import struct
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ..storage import atomic_write_bytes
from .dataset import DataError, Dataset, scale_uint8

MAX_DOWNLOAD_BYTES = 64 * 2**20  # the largest IDX file is under 30 MB
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# name -> (title, torchvision folder, download URL); torchvision's mirrors.
IDX_SETS = {
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
HOW_TO_GET = {
    "mnist": "MNIST was not found on this machine; pass --data-dir DIR (or set VAE_DATA_DIR) "
             "holding the four MNIST IDX files.",
    "fashion-mnist": "Fashion-MNIST was not found on this machine; install Debian's dataset-fashion-mnist "
                     "package, or pass --data-dir DIR holding its four IDX files.",
}


def find_idx_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder holding all four IDX files of `name`, searched in DESIGN.md's order."""
    if name not in IDX_SETS:
        raise DataError(f"'{name}' is not an IDX data set; expected one of {', '.join(IDX_SETS)}.")
    candidates = [Path(data_dir).expanduser()] if data_dir is not None else []
    root = os.environ.get("VAE_DATA_DIR")
    if root:
        root = Path(root).expanduser()
        candidates += [root / name, root / IDX_SETS[name][1] / "raw"]  # ours, then torchvision's layout
    if name == "fashion-mnist":
        candidates.append(DEBIAN_FASHION_DIR)
    for folder in candidates:
        if all(idx_file(folder, stem) for stem in IDX_FILES):
            return folder.resolve()
    return None


def idx_file(folder: Path, stem: str) -> Path | None:
    # Plain first: torchvision leaves both, and the plain file reads faster.
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def load_idx_set(name: str, folder: Path, classes: tuple[str, ...]) -> Dataset:
    title = IDX_SETS[name][0]
    x_train, y_train, x_test, y_test = (read_idx(idx_file(folder, stem)) for stem in IDX_FILES)
    for x, y, split in ((x_train, y_train, "training"), (x_test, y_test, "test")):
        if len(x) != len(y):
            raise DataError(f"{title} in {folder} is inconsistent: its {split} files hold "
                            f"{len(x)} images but {len(y)} labels.")
        if y.size and y.max() > 9:
            raise DataError(f"{title} in {folder} has {split} labels above 9, so its label file is corrupt.")
    return Dataset(name, scale_uint8(x_train), y_train, scale_uint8(x_test), y_test, classes, str(folder))


def read_idx(path: Path) -> np.ndarray:
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


def download_idx(name: str, dest: str | os.PathLike, base_url: str | None = None) -> Path:
    """Fetch the four .gz IDX files of `name` into `dest`, each verified before it is kept."""
    if name not in IDX_SETS:
        raise DataError(f"'{name}' cannot be downloaded; expected one of {', '.join(IDX_SETS)}.")
    base = (base_url or IDX_SETS[name][2]).rstrip("/") + "/"
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
    atomic_write_bytes(target, content)  # a reader never sees half a file
