"""Data sets (DESIGN.md, "Data sets"): the built-in sets, IDX files, a user's own files, validated.

The package's interface is what this file names; the modules behind it, leaf first:
`dataset` (the Dataset every loader returns, DataError, the seeded split), `images` (the one image
decoder), `userfiles` (a user's .npz/.npy/folder/zip), `idx` (finding, reading and fetching IDX files),
`frey` (Frey Face's MATLAB file and its block split), `cache` (parsed sets kept in binary form),
`builtin` (sets by name, and what this machine has).
"""
from .builtin import BUILTIN_DATASETS, available_datasets, load_dataset
from .dataset import DataError, Dataset, scale_uint8, split_indices
from .idx import download_idx, find_idx_dir
from .userfiles import load_user_data

__all__ = ["BUILTIN_DATASETS", "DataError", "Dataset", "available_datasets", "download_idx", "find_idx_dir",
           "load_dataset", "load_user_data", "scale_uint8", "split_indices"]
