"""Frey Face, the paper's second data set: 1,965 grey frames of one face from a video, 28 high by 20 wide.

The file is `frey_rawface.mat` as Sam Roweis's data page distributes it: a MATLAB (v5) file holding one
variable `ff`, uint8, shape 560 x 1965, one frame per column, each column a 28 x 20 image in row-major
order (`ff.T.reshape(-1, 28, 20)`). It is read with `scipy.io.loadmat` (never pickle), after
`matfile.py` has walked its layout and checked the variable's class, shape and size. Where it is
looked for, first match wins (as for the IDX sets): `--data-dir DIR` (DIR holds the file), then
`$VAE_DATA_DIR/frey/`. Pixels are scaled to [0, 1]; there are no labels, and every image keeps its frame
index (its place in the video), so the map can be coloured by time.

The split. Kingma & Welling (2013) give none, so this one is fixed: the 1,965 frames are cut into 98 blocks
of 20 consecutive frames (the last 5 frames stay in training), and 10 blocks chosen with the project's split
seed, 200 frames (10%), are the test set. Blocks, not random frames, because neighbouring frames of a video
are near-duplicates: with 200 random frames held out, nearly every test frame has its neighbour in the
training set, and the test bound would flatter the model by measuring memory of the video rather than
generalisation. Measured on this split, the mean Euclidean distance (pixels in [0, 1]) from a test frame
to its nearest training frame is 1.20, against 1.05 with 200 random frames held out (mean of 5 seeds);
the face returns to the same expressions over the video, so no split of one video is fully independent.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .dataset import SPLIT_SEED, DataError, Dataset, scale_uint8
from .matfile import MatLayoutError, find_variable

FREY_FILE = "frey_rawface.mat"
FREY_VARIABLE = "ff"
FREY_SHAPE = (28, 20)  # height, width
FREY_FRAMES = 1965
BLOCK = 20  # consecutive frames held out together
TEST_BLOCKS = 10  # 200 of 1,965 frames: about 10%
MAX_FILE_BYTES = 16 * 2**20  # the real file is 1.1 MB; anything far larger is not it


def frey_candidates(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders looked in for frey_rawface.mat, in order."""
    folders = [Path(data_dir).expanduser()] if data_dir is not None else []
    root = os.environ.get("VAE_DATA_DIR")
    if root:
        folders.append(Path(root).expanduser() / "frey")
    return folders


def find_frey_file(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first frey_rawface.mat found (DESIGN.md's order), or None."""
    for folder in frey_candidates(data_dir):
        if (folder / FREY_FILE).is_file():
            return (folder / FREY_FILE).resolve()
    return None


def frey_how_to_get(data_dir: str | os.PathLike | None = None) -> str:
    """One sentence: where the file was looked for, and how to give it."""
    folders = frey_candidates(data_dir)
    where = f"in {' or '.join(str(f) for f in folders)}" if folders else \
        "(no --data-dir was given and VAE_DATA_DIR is not set)"
    return (f"Frey Face ({FREY_FILE}) was not found {where}; pass --data-dir DIR with DIR holding {FREY_FILE}, "
            "or set VAE_DATA_DIR to a folder whose frey/ sub-folder holds it.")


def frey_split(n: int = FREY_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) frame indices, each sorted: TEST_BLOCKS whole blocks of BLOCK consecutive frames, chosen
    with the split seed, are the test set (the module's docstring says why blocks)."""
    n_blocks = n // BLOCK  # a last, partial block stays in training
    blocks = np.random.default_rng(SPLIT_SEED).choice(n_blocks, size=min(TEST_BLOCKS, n_blocks - 1), replace=False)
    test = np.sort((np.sort(blocks)[:, None] * BLOCK + np.arange(BLOCK)).ravel())
    return np.setdiff1d(np.arange(n), test), test


def read_frey(path: str | os.PathLike) -> np.ndarray:
    """The frames of frey_rawface.mat as uint8 [1965, 28, 20], in the video's order; anything else is refused.
    Its layout is checked first (vae/data/matfile.py: scipy's reader can crash on a damaged file)."""
    from scipy.io import loadmat  # imported late: keeps `import vae.data` light
    from scipy.io.matlab import MatReadError

    path = Path(path)
    where = f"{path.name} in {path.parent}"
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataError(f"{where} is {size / 2**20:.0f} MB, far larger than Frey Face's 1.1 MB, "
                        "so it is not that file.")
    try:
        ff, others = find_variable(path.read_bytes(), FREY_VARIABLE, max_bytes=MAX_FILE_BYTES)
    except MatLayoutError as err:
        raise DataError(f"{where} is not a MATLAB v5 file that can be read ({err}).") from err
    except OSError as err:
        raise DataError(f"{where} could not be read ({err}).") from err
    if ff is None:
        raise DataError(f"{where} has no variable '{FREY_VARIABLE}' (it holds: {', '.join(others) or 'none'}), "
                        "so it is not Frey Face.")
    expected = (FREY_SHAPE[0] * FREY_SHAPE[1], FREY_FRAMES)
    if ff.shape != expected or ff.kind != "uint8" or ff.scipy_bytes is None:
        raise DataError(f"{where} holds '{FREY_VARIABLE}' as {ff.kind} {' x '.join(map(str, ff.shape))}, "
                        f"not Frey Face's uint8 {expected[0]} x {expected[1]} (one 28 x 20 image per column).")
    try:  # only the bytes checked above: the header and ff's element
        values = loadmat(io.BytesIO(ff.scipy_bytes), variable_names=[FREY_VARIABLE])[FREY_VARIABLE]
    except (MatReadError, ValueError, TypeError, IndexError, KeyError, EOFError, NotImplementedError) as err:
        raise DataError(f"{where} is damaged: its '{FREY_VARIABLE}' could not be read ({err}).") from err
    if values.shape != expected or values.dtype != np.uint8:  # the check and scipy must agree
        raise DataError(f"{where} holds '{FREY_VARIABLE}' as {values.dtype} {values.shape}, not uint8 {expected}.")
    return np.ascontiguousarray(values.T).reshape(-1, *FREY_SHAPE)  # a column is one image, row-major


def load_frey(path: str | os.PathLike) -> Dataset:
    """Frey Face from its file: the fixed block split (frey_split), pixels in [0, 1], frame indices kept."""
    frames = read_frey(path)
    train, test = frey_split(len(frames))
    note = (f"Frey Face has no official split: {len(test)} frames in {len(test) // BLOCK} blocks of {BLOCK} "
            "consecutive frames (chosen with a fixed seed) are the test set, so that most test frames lie "
            "several frames away from any training frame")
    return Dataset("frey", scale_uint8(frames[train]), None, scale_uint8(frames[test]), None, None,
                   str(Path(path).resolve()), (note,), frame_train=train, frame_test=test)
