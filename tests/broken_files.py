"""Builders for hostile and broken checkpoint files, made fresh by the tests (never hand-edited blobs).

Each function writes one file into `folder` and returns its path.
"""
from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import torch
from safetensors.torch import save as st_save

from vae.checkpoint import save_checkpoint
from vae.config import ModelConfig
from vae.model import VAE


class MarkerPayload:
    """Unpickling this creates a marker file: proof that a loader ran code from a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def tiny_model() -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(image_shape=(8, 8), latent_dim=2, hidden=(16,)))


def valid(folder: Path, name="valid.safetensors") -> Path:
    return save_checkpoint(folder / name, tiny_model(), dataset={"name": "digits", "image_shape": [8, 8]},
                           train_config={"epochs": 1}, history=[], summary={"epochs": 1})


def raw_pickle(folder: Path, marker: Path, name="evil.safetensors") -> Path:
    path = folder / name
    path.write_bytes(pickle.dumps({"state_dict": MarkerPayload(marker)}))
    return path


def torch_pickle(folder: Path, marker: Path, name="evil.pt") -> Path:
    path = folder / name
    torch.save({"state_dict": MarkerPayload(marker)}, path)  # a zip container holding a pickle
    return path


def truncated(folder: Path) -> Path:
    data = valid(folder, "whole.safetensors").read_bytes()
    path = folder / "truncated.safetensors"
    path.write_bytes(data[: len(data) // 2])
    return path


def empty(folder: Path) -> Path:
    path = folder / "empty.safetensors"
    path.write_bytes(b"")
    return path


def wrong_magic(folder: Path) -> Path:
    path = folder / "random.safetensors"
    path.write_bytes(b"GIF89a" + bytes(range(256)) * 4)
    return path


def huge_header(folder: Path) -> Path:
    """A length field claiming a 4 GB header in a tiny file."""
    path = folder / "huge-header.safetensors"
    path.write_bytes(struct.pack("<Q", 4 * 2**30) + b"{}")
    return path


def many_tensors(folder: Path) -> Path:
    header = {f"t{i}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(100_000)}
    blob = json.dumps(header).encode()
    path = folder / "many-tensors.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * 400_000)
    return path


def bit_flipped(folder: Path) -> Path:
    data = bytearray(valid(folder, "whole2.safetensors").read_bytes())
    data[10] ^= 0xFF  # inside the JSON header
    path = folder / "bit-flipped.safetensors"
    path.write_bytes(bytes(data))
    return path


def no_metadata(folder: Path) -> Path:
    path = folder / "plain.safetensors"
    path.write_bytes(st_save({k: v.contiguous() for k, v in tiny_model().state_dict().items()}))
    return path


def _rewrite(folder: Path, name: str, *, tensors=None, meta_changes=None) -> Path:
    from safetensors import safe_open
    from safetensors.torch import load
    src = valid(folder, f"src-{name}")
    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
    state = load(src.read_bytes())
    if tensors:
        state.update(tensors)
    meta.update(meta_changes or {})
    path = folder / name
    path.write_bytes(st_save(state, metadata=meta))
    return path


def wrong_version(folder: Path) -> Path:
    return _rewrite(folder, "future.safetensors", meta_changes={"format_version": "99"})


def wrong_shape(folder: Path) -> Path:
    key = next(iter(tiny_model().state_dict()))
    return _rewrite(folder, "wrong-shape.safetensors", tensors={key: torch.zeros(3, 3)})


def wrong_dtype(folder: Path) -> Path:
    key, value = next(iter(tiny_model().state_dict().items()))
    return _rewrite(folder, "wrong-dtype.safetensors", tensors={key: value.to(torch.float64)})


def bad_config(folder: Path) -> Path:
    config = json.dumps({"image_shape": [8, 8], "latent_dim": -3})
    return _rewrite(folder, "bad-config.safetensors", meta_changes={"model_config": config})


BROKEN = {
    "truncated": (truncated, "truncated"),
    "empty": (empty, "is empty"),
    "wrong magic": (wrong_magic, "not a safetensors file|claims"),
    "huge header": (huge_header, "header"),
    "many tensors": (many_tensors, "tensors"),
    "bit flipped": (bit_flipped, "not a safetensors file|not valid JSON|damaged|VAE Explorer"),
    "missing metadata": (no_metadata, "not a VAE Explorer checkpoint"),
    "wrong version": (wrong_version, "format version"),
    "wrong shape": (wrong_shape, "shape"),
    "wrong dtype": (wrong_dtype, "dtype"),
    "bad config": (bad_config, "invalid model config"),
}
