"""What every page shares: settings, the server-wide caches, and this session's chosen model.

Server-wide objects (`st.cache_resource`) are read-only after creation and keyed
by checkpoint identity (the file's SHA-256), so a cache entry never serves a
different checkpoint; the job registry guards itself with a lock. Uploads live
in `st.session_state`, so they stay private to the session that made them.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from vae.bundle import seed_cache
from vae.checkpoint import Checkpoint, CheckpointError, load_checkpoint_bytes
from vae.data import DataError, Dataset
from vae.evaluate import checkpoint_dataset
from vae.jobs import JobRegistry
from vae.metrics import posterior_stats
from vae.runs import list_runs

REPO = Path(__file__).resolve().parents[1]
MAX_UPLOAD_MB = 200  # also server.maxUploadSize in .streamlit/config.toml
DEFAULT_ASSET = "mnist-5k-z2.safetensors"  # the app opens on the 2-D model: its map is the latent itself


@dataclass(frozen=True)
class Settings:
    runs_root: Path
    assets: Path
    read_only: bool  # a classroom: no training, no uploads
    max_jobs: int  # training jobs that run at once; the rest queue
    torch_threads: int


@st.cache_resource
def settings() -> Settings:
    env = os.environ
    return Settings(runs_root=Path(env.get("VAE_RUNS_DIR", REPO / "runs")).resolve(),
                    assets=REPO / "assets",
                    read_only=env.get("VAE_READ_ONLY", "").lower() in ("1", "true", "yes"),
                    max_jobs=int(env.get("VAE_MAX_JOBS", "1")),
                    torch_threads=int(env.get("VAE_TORCH_THREADS", "1")))


@st.cache_resource
def registry() -> JobRegistry:
    s = settings()
    return JobRegistry(s.runs_root, max_running=s.max_jobs, threads=s.torch_threads)


def session_id() -> str:
    if "session_id" not in st.session_state:
        st.session_state.session_id = uuid.uuid4().hex
    return st.session_state.session_id


# -- checkpoints, cached by the SHA-256 of their bytes ------------------------------------
@st.cache_resource(max_entries=16, show_spinner=False)
def _parse_checkpoint(sha256: str, name: str, _data: bytes, _path: str | None) -> Checkpoint:
    ck = load_checkpoint_bytes(_data, name, Path(_path) if _path else None)
    ck.model.requires_grad_(False)  # shared across sessions: inference only
    if _path and Path(_path).parent == settings().assets:
        # A bundled model ships its derived results (IW curve, projections, …): a fresh install computes
        # none of them, once per server process per file (vae/bundle.py).
        seed_cache(settings().runs_root, Path(_path), sha256)
    return ck


def checkpoint_from_bytes(data: bytes, name: str, path: Path | None = None) -> Checkpoint:
    return _parse_checkpoint(hashlib.sha256(data).hexdigest(), name, data, str(path) if path else None)


def library() -> dict[str, str]:
    """Every checkpoint this session may open: key -> label. Bundled, then runs (shared), then uploads (private)."""
    s = settings()
    assets = sorted(s.assets.glob("*.safetensors"), key=lambda p: (p.name != DEFAULT_ASSET, p.name))
    items = {f"asset:{p.name}": f"Bundled: {p.stem}" for p in assets}
    items.update({f"run:{r.name}": f"Run: {r.name}" for r in list_runs(s.runs_root)})
    for sha, (name, _) in st.session_state.get("uploads", {}).items():
        items[f"upload:{sha}"] = f"Upload: {name}"
    return items


def open_checkpoint(key: str) -> Checkpoint:
    kind, _, ident = key.partition(":")
    s = settings()
    if kind == "upload":
        name, data = st.session_state["uploads"][ident]
        return checkpoint_from_bytes(data, name)
    path = (s.assets / ident) if kind == "asset" else (s.runs_root / ident / "model.safetensors")
    if not path.is_file():
        raise CheckpointError(f"{ident} is no longer there; choose another model.")
    return checkpoint_from_bytes(path.read_bytes(), path.name if kind == "asset" else ident, path)


def current_key() -> str | None:
    """This session's model: its own choice, else the link's `?model=` (a run or a bundled file), else the default.
    The choice is mirrored into the URL so the link can be handed on."""
    keys = library()
    key = st.session_state.get("model_key")
    if key not in keys:
        linked = st.query_params.get("model")
        key = linked if linked in keys and not linked.startswith("upload:") else next(iter(keys), None)
        st.session_state.model_key = key
    if key and not key.startswith("upload:") and st.query_params.get("model") != key:
        st.query_params["model"] = key  # uploads stay private: they never appear in a link
    return key


def current_checkpoint() -> Checkpoint | None:
    key = current_key()
    return open_checkpoint(key) if key else None


# -- data and encodings --------------------------------------------------------------------
@st.cache_resource(max_entries=4, show_spinner="Loading the data set…")
def _dataset(name: str, source: str, _ck: Checkpoint) -> Dataset:
    return checkpoint_dataset(_ck)  # IDX sets are found via $VAE_DATA_DIR or Debian's package


def dataset_for(ck: Checkpoint) -> Dataset:
    info = ck.dataset or {}
    return _dataset(str(info.get("name")), str(info.get("source")), ck)


@dataclass(frozen=True)
class Encoding:
    mu: np.ndarray  # [N, D] posterior means
    logvar: np.ndarray  # [N, D]
    labels: np.ndarray | None
    parts: tuple[np.ndarray, ...]  # the data set's own image arrays, in order (never copied)
    frames: np.ndarray | None = None  # each row's frame in the video it was cut from (Frey Face), else None

    def images(self, rows) -> np.ndarray:
        """Images of the given rows, looked up in the data set's arrays."""
        offsets = np.cumsum([0] + [len(p) for p in self.parts])
        rows = np.atleast_1d(np.asarray(rows))
        part = np.searchsorted(offsets, rows, side="right") - 1
        return np.stack([self.parts[k][r - offsets[k]] for k, r in zip(part, rows, strict=True)])

    def __len__(self) -> int:
        return len(self.mu)


SPLITS = ("test", "train", "all")


@st.cache_resource(max_entries=8, show_spinner="Encoding the data set…")
def _encode(sha256: str, split: str, _ck: Checkpoint, _data: Dataset) -> Encoding:
    splits = {"test": [(_data.x_test, _data.y_test, _data.frame_test)],
              "train": [(_data.x_train, _data.y_train, _data.frame_train)]}
    parts = splits["train"] + splits["test"] if split == "all" else splits[split]
    labels, frames = (_joined([part[k] for part in parts]) for k in (1, 2))
    mu, logvar = map(np.concatenate, zip(*(posterior_stats(_ck.model, x) for x, _, _ in parts), strict=True))
    for arr in (mu, logvar, labels, frames):
        if arr is not None:
            arr.setflags(write=False)  # shared by every session
    return Encoding(mu=mu, logvar=logvar, labels=labels, parts=tuple(x for x, _, _ in parts), frames=frames)


def _joined(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    """The splits' labels (or frame indices) one after another; None unless every split has them."""
    return None if any(a is None for a in arrays) else np.concatenate(arrays)


def encoding(ck: Checkpoint, split: str = "test") -> Encoding:
    return _encode(ck.sha256, split, ck, dataset_for(ck))


def data_or_message(ck: Checkpoint) -> Dataset | None:
    """The checkpoint's data set, or None after telling the user which data it needs and where to get it."""
    try:
        return dataset_for(ck)
    except DataError as err:
        st.warning(f"{err} This page needs the images the model was trained on; "
                   "`python -m vae datasets` lists what is available here.")
        return None
