"""The data set every loader returns, its one error, and the seeded split they share.

A `Dataset` holds float32 images in [0, 1], shaped [N, H, W], with read-only arrays, so one cached copy
can be shared by every page. A set cut from a video (Frey Face) also keeps each image's frame index, its
place in the video, so a map can be coloured by time where there are no labels. Anything a loader cannot
use is refused with a `DataError` whose message is one sentence naming the file or set and the problem.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLIT_SEED = 0  # fixed, so a checkpoint's test set is the same on every machine


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
    frame_train: np.ndarray | None = None  # int64 [N]: each image's frame in the video it was cut from
    frame_test: np.ndarray | None = None

    def __post_init__(self):
        # Read-only arrays make sharing the cached copy safe: code that tried to
        # normalise in place fails loudly instead of corrupting every page's data.
        for field, dtype in (("x_train", np.float32), ("y_train", np.int64), ("x_test", np.float32),
                             ("y_test", np.int64), ("frame_train", np.int64), ("frame_test", np.int64)):
            arr = getattr(self, field)
            if arr is not None:
                arr = np.ascontiguousarray(arr, dtype=dtype)
                arr.flags.writeable = False
                object.__setattr__(self, field, arr)
        for x, frames in (("x_train", "frame_train"), ("x_test", "frame_test")):
            if getattr(self, frames) is not None and len(getattr(self, frames)) != len(getattr(self, x)):
                raise ValueError(f"{self.name}: {frames} has {len(getattr(self, frames))} entries for "
                                 f"{len(getattr(self, x))} images.")
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


def scale_uint8(u8: np.ndarray) -> np.ndarray:
    # Straight into float32: a float64 copy of 70k images would be 440 MB.
    out = np.empty(u8.shape, np.float32)
    np.divide(u8, np.float32(255), out=out)
    return out
