"""Checkpoints: one self-contained `.safetensors` file, written atomically, loaded without pickle.

The weights are tensors; the model config, the training config, the data set's
name and shape, the metric history and a summary live as JSON strings in the
file's metadata, so a model is rebuilt from its file alone. Loading reads the
header ourselves first (size, magic, format version, tensor count) and refuses
anything unexpected with one sentence before safetensors parses the payload.
`torch.load` is never called: a PyTorch pickle can run code when it is opened.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import ConfigError, ModelConfig
from .model import VAE
from .storage import atomic_write_bytes

FORMAT = "vae-explorer-checkpoint"
FORMAT_VERSION = "1"
RESUME_FORMAT = "vae-explorer-resume"
MAX_FILE_BYTES = 512 * 1024 * 1024  # the largest model we build is a few MB; this stops a hostile file filling memory
MAX_HEADER_BYTES = 16 * 1024 * 1024  # safetensors itself allows 100 MB; our headers are tens of KB
MAX_TENSORS = 4096
MAX_STEP_RECORDS = 4000  # per-step train records kept in a checkpoint's metadata; metrics.jsonl keeps them all
MAX_KL_RECORDS = 300  # test records that keep their KL per dimension there (Nz = 200 makes each ~2 KB)
# pickle's PROTO opcode (protocols 2-5), and the zip that torch.save writes
PICKLE_MAGICS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")


class CheckpointError(ValueError):
    """A file that is not a valid checkpoint of this format; the message is one sentence."""


@dataclass
class Checkpoint:
    model: VAE
    model_config: ModelConfig
    train_config: dict = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)  # Dataset.info(): name, source, image_shape, class_names ...
    history: list[dict] = field(default_factory=list)  # metrics records (see vae/runs.py)
    summary: dict = field(default_factory=dict)  # epochs, step, train_elbo, test_elbo, samples_per_s, seconds
    sha256: str = ""  # identity of the file's bytes: the key of every derived cache
    path: Path | None = None

    @property
    def label(self) -> str:
        return self.path.stem if self.path else self.sha256[:8]


# -- what of a run's history a checkpoint carries ---------------------------------------------
def checkpoint_history(records: list[dict]) -> list[dict]:
    """The metric history for a checkpoint's metadata, by step: every epoch record, the last
    MAX_STEP_RECORDS step records and as many changes of the learning rate or beta (vae/control.py), and
    KL per dimension on at most MAX_KL_RECORDS evenly spaced test records (the last always), so a long run
    stays well inside MAX_HEADER_BYTES."""
    epochs = _thin_kl([r for r in records if r.get("kind") == "epoch"])
    steps = [r for r in records if r.get("kind") == "step"][-MAX_STEP_RECORDS:]
    changes = [r for r in records if r.get("kind") == "change"][-MAX_STEP_RECORDS:]
    return sorted(epochs + steps + changes, key=lambda r: r["step"])


def _thin_kl(records: list[dict], keep: int = MAX_KL_RECORDS) -> list[dict]:
    """`records` with KL per dimension kept on at most `keep` evenly spaced of those that carry it."""
    with_kl = [i for i, r in enumerate(records) if "kl_per_dim" in r]
    if len(with_kl) <= keep:
        return records
    kept = {with_kl[int(round(j))] for j in np.linspace(0, len(with_kl) - 1, keep)}
    return [r if i in kept or "kl_per_dim" not in r else {k: v for k, v in r.items() if k != "kl_per_dim"}
            for i, r in enumerate(records)]


def _json_metadata(**items) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in items.items()}


def checkpoint_bytes(model: VAE, *, train_config: dict, dataset: dict, history: list[dict],
                     summary: dict) -> bytes:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = _json_metadata(format=FORMAT, format_version=FORMAT_VERSION,
                              model_config=model.config.to_dict(), train_config=train_config,
                              dataset=dataset, history=history, summary=summary)
    return st_save(tensors, metadata=metadata)


def save_checkpoint(path: str | os.PathLike, model: VAE, *, train_config: dict | None = None,
                    dataset: dict | None = None, history: list[dict] | None = None,
                    summary: dict | None = None) -> Path:
    data = checkpoint_bytes(model, train_config=train_config or {}, dataset=dataset or {},
                            history=history or [], summary=summary or {})
    atomic_write_bytes(path, data)
    return Path(path)


# -- loading ------------------------------------------------------------------------------
def _read_header(data: bytes, name: str) -> dict:
    """Validate the safetensors framing by hand, so a hostile header is refused before it is parsed."""
    if len(data) == 0:
        raise CheckpointError(f"{name} is empty.")
    looks_like_safetensors = len(data) > 8 and data[8:9] == b"{"
    if not looks_like_safetensors and data.startswith(PICKLE_MAGICS):
        raise CheckpointError(f"{name} is a PyTorch pickle, not safetensors; it was not opened, because "
                              "unpickling a file can run code.")
    if len(data) < 8:
        raise CheckpointError(f"{name} is too short to be a safetensors file ({len(data)} bytes).")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(f"{name} claims a {n:,}-byte header, more than the {MAX_HEADER_BYTES:,} bytes "
                              "a checkpoint of this format has; it is not a valid checkpoint.")
    if 8 + n > len(data):
        raise CheckpointError(f"{name} is truncated: its header needs {n:,} bytes but the file has "
                              f"{len(data) - 8:,} after the length field.")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{name} is not a safetensors file (its header is not valid JSON).") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name} is not a safetensors file (its header is not a JSON object).")
    if len(header) - 1 > MAX_TENSORS:
        raise CheckpointError(f"{name} lists {len(header) - 1:,} tensors, more than a checkpoint of this "
                              "format ever holds.")
    return header


def _metadata(header: dict, name: str, expected_format: str) -> dict:
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        raise CheckpointError(f"{name} is a safetensors file but not a VAE Explorer "
                              f"{'checkpoint' if expected_format == FORMAT else 'resume file'} "
                              f"(no '{expected_format}' metadata).")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{name} has format version {meta.get('format_version')!r}; this version of "
                              f"VAE Explorer reads version {FORMAT_VERSION}.")
    out = {}
    for key, value in meta.items():
        try:
            out[key] = json.loads(value) if key not in ("format", "format_version") else value
        except json.JSONDecodeError:
            raise CheckpointError(f"{name} has unreadable '{key}' metadata (not valid JSON).") from None
    return out


def _tensors(data: bytes, name: str) -> dict[str, torch.Tensor]:
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{name} is damaged and cannot be read ({str(err).splitlines()[0]}).") from None


def _check_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], name: str, prefix: str = "") -> dict:
    """Every tensor the model expects, with its exact shape and dtype, and nothing else."""
    expected = model.state_dict()
    given = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        what = f"is missing tensor '{missing[0]}'" if missing else f"has an unexpected tensor '{extra[0]}'"
        raise CheckpointError(f"{name} {what} for the model its config describes.")
    for key, ref in expected.items():
        t = given[key]
        if t.shape != ref.shape or t.dtype != ref.dtype:
            raise CheckpointError(f"{name} has tensor '{key}' of shape {tuple(t.shape)} and dtype {t.dtype}, "
                                  f"but its config needs shape {tuple(ref.shape)} and dtype {ref.dtype}.")
        if not torch.isfinite(t).all():
            raise CheckpointError(f"{name} has non-finite values in tensor '{key}'.")
    return given


def _read_file(path: Path) -> bytes:
    name = path.name
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CheckpointError(f"{name} is {size / 2**20:,.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB "
                              "limit for a checkpoint.")
    return path.read_bytes()


def _build_model(meta: dict, name: str) -> VAE:
    try:
        config = ModelConfig.from_dict(meta.get("model_config") or {})
    except (ConfigError, TypeError) as err:
        raise CheckpointError(f"{name} has an invalid model config: {str(err).rstrip('.')}.") from None
    return VAE(config)


def load_checkpoint_bytes(data: bytes, name: str = "checkpoint", path: Path | None = None) -> Checkpoint:
    """Parse and validate a checkpoint held in memory (an upload, or a file already read)."""
    header = _read_header(data, name)
    meta = _metadata(header, name, FORMAT)
    model = _build_model(meta, name)
    state = _check_state(model, _tensors(data, name), name)
    model.load_state_dict(state)
    model.eval()
    return Checkpoint(model=model, model_config=model.config, train_config=meta.get("train_config") or {},
                      dataset=meta.get("dataset") or {}, history=meta.get("history") or [],
                      summary=meta.get("summary") or {}, sha256=hashlib.sha256(data).hexdigest(), path=path)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a checkpoint file, or the model.safetensors of a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    return load_checkpoint_bytes(_read_file(path), path.name, path)


# -- resume state: weights, optimiser state, step and random-generator states ----------------
def save_resume_state(path: str | os.PathLike, model: VAE, optimizer: torch.optim.Optimizer, *,
                      step: int, epoch: int, generators: dict[str, torch.Generator],
                      train_config: dict) -> None:
    opt = optimizer.state_dict()
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    scalars: dict[str, dict] = {}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    for gname, gen in generators.items():
        tensors[f"rng.{gname}"] = gen.get_state()
    meta = _json_metadata(format=RESUME_FORMAT, format_version=FORMAT_VERSION, step=step, epoch=epoch,
                          model_config=model.config.to_dict(), train_config=train_config,
                          param_groups=opt["param_groups"], optim_scalars=scalars)
    atomic_write_bytes(path, st_save(tensors, metadata=meta))


@dataclass
class ResumeState:
    model: VAE
    optimizer_state: dict
    step: int
    epoch: int
    generator_states: dict[str, torch.Tensor]
    train_config: dict


def load_resume_state(path: str | os.PathLike) -> ResumeState:
    path = Path(path)
    data = _read_file(path)
    header = _read_header(data, path.name)
    meta = _metadata(header, path.name, RESUME_FORMAT)
    model = _build_model(meta, path.name)
    tensors = _tensors(data, path.name)
    model.load_state_dict(_check_state(model, {k: v for k, v in tensors.items() if k.startswith("model.")},
                                       path.name, prefix="model."))
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, extras in (meta.get("optim_scalars") or {}).items():
        state.setdefault(int(pid), {}).update(extras)
    gens = {k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")}
    return ResumeState(model=model, optimizer_state={"state": state, "param_groups": meta["param_groups"]},
                       step=int(meta["step"]), epoch=int(meta["epoch"]), generator_states=gens,
                       train_config=meta.get("train_config") or {})
