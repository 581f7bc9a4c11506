"""A run's snapshots as the app shows them: live on the Train page (the newest one, redrawn as each lands) and
replayed afterwards (app_pages/replay.py), the same frames in both.

Frames come from the snapshot files in the run folder (vae/snapshots.py), never from the training process: every
viewer of a run reads them through the same server-wide caches, keyed on each file's name, size and modification
time, so a class watching one run costs the training nothing and the server one read of each new file. A latent
above 2-D is drawn on each snapshot's principal plane rotated onto the frame before it (vae.snapshots.
replay_coords), so a frame's picture never changes once shown and Replay later plays exactly what the live map
showed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vae.checkpoint import Checkpoint, CheckpointError
from vae.data import DataError
from vae.pictures import tile, to_uint8
from vae.snapshots import (
    Snapshot,
    is_epoch_end,
    load_snapshots,
    read_snapshot,
    replay_coords,
    snapshot_dir,
    snapshot_files,
    where,
)

from . import state
from .figures.frames import map_span, snapshot_figure

MAX_FILES = 2048  # snapshot files kept read (~50 KB each): a long run's 1,000 between epoch ends, and its epochs


@dataclass(frozen=True)
class Frames:
    """A run's snapshots so far, by step, and each one's map as drawn (aligned: module docstring)."""
    snapshots: list[Snapshot]
    coords: list[np.ndarray]


@st.cache_resource(max_entries=MAX_FILES, show_spinner=False)
def _read(path: str, size: int, mtime_ns: int) -> Snapshot:
    """One snapshot file, read once per server process (name, size and time are its identity: a resumed run
    that writes a step again writes a new file). A resource: every session shares the one read-only copy."""
    return read_snapshot(Path(path))


def _cached_read(path: Path) -> Snapshot:
    info = path.stat()
    return _read(str(path), info.st_size, info.st_mtime_ns)


def stamp(files: list[Path]) -> str:
    """What identifies a folder's state: a digest of each file's name, size and modification time. A digest,
    not the tuple itself: Streamlit hashes a cache key on every call, and a long run's tuple of a thousand
    entries, hashed by each viewer's every redraw, was a tenth of a watched server's time (py-spy)."""
    listing = repr([(p.name, (info := p.stat()).st_size, info.st_mtime_ns) for p in files])
    return hashlib.blake2b(listing.encode(), digest_size=16).hexdigest()


@st.cache_resource(max_entries=16, show_spinner=False)
def frames(folder: str, folder_stamp: str) -> Frames:
    """The frames of a snapshot folder in the state `folder_stamp` names (a new file reads one file more)."""
    snaps = load_snapshots(folder, read=_cached_read)
    return Frames(snaps, replay_coords(snaps, snaps[-1].kl_per_dim.shape[0]) if snaps else [])


def pictures(snap: Snapshot) -> dict[str, np.ndarray]:
    """A snapshot's two grids as the figures draw them: 16 prior samples 4x4; 8 test images over their
    reconstructions."""
    return {"samples": to_uint8(tile(snap.samples / 255.0, 4)),
            "reconstructions": to_uint8(tile(np.concatenate([snap.inputs[:8], snap.reconstructions[:8]]) / 255.0, 8))}


def point_frames(ck: Checkpoint, index: np.ndarray) -> tuple | None:
    """Each map point's frame in the video (`index`: the test rows of a snapshot's points), for a data set cut
    from one (Frey Face), else None. Only a set without classes can be one, so the data of a labelled model is
    never loaded here."""
    if (ck.dataset or {}).get("class_names"):
        return None
    try:
        frame_test = state.dataset_for(ck).frame_test
    except DataError:
        return None  # the map needs nothing but the snapshots: it is drawn in one colour
    if frame_test is None or len(index) == 0 or index.max() >= len(frame_test):
        return None
    return tuple(int(f) for f in frame_test[index])


@st.cache_resource(max_entries=16, show_spinner=False)
def _colouring(run_name: str, run_began: int, _index: np.ndarray) -> tuple[tuple | None, tuple | None]:
    """(class names, each point's video frame) of a run, from its checkpoint, once per run: neither changes as
    it trains, so a new checkpoint each epoch is not opened again (that cost a watched server a tenth of its
    time). `run_began` (its first snapshot's time) tells a run from an earlier one of the same name; `_index`
    (the snapshots' test rows, fixed by the run's seed) is not hashed."""
    try:
        ck = state.open_checkpoint(f"run:{run_name}")
    except (CheckpointError, OSError):
        return None, None
    names = (ck.dataset or {}).get("class_names")
    return (tuple(names) if names else None), point_frames(ck, np.asarray(_index, np.int64))


@st.cache_resource(max_entries=16, show_spinner=False)
def _figure(folder: str, folder_stamp: str, class_names: tuple | None, video: tuple | None) -> go.Figure:
    """The newest frame, its axes spanning every frame so far (built once per new file, shared by viewers)."""
    run = frames(folder, folder_stamp)
    snap = run.snapshots[-1]
    return snapshot_figure({"coords": run.coords[-1], **pictures(snap)}, snap.labels,
                           list(class_names) if class_names else None, span=map_span(run.coords),
                           video_frames=np.asarray(video) if video else None)


def caption(run: Frames) -> str:
    """Where the newest frame was taken and the latest test ELBO: "Latent map at step 150 (epoch 3.75), frame 5
    of 5; test ELBO -150.2 nats at epoch 3.\""""
    snap, n = run.snapshots[-1], len(run.snapshots)
    text = f"Latent map at {where(snap)}, frame {n} of {n}"
    tested = [s for s in run.snapshots if s.test_elbo is not None]
    if tested and is_epoch_end(snap) and tested[-1] is snap:
        return f"{text}; test ELBO {snap.test_elbo:,.1f} nats."
    if tested:
        return f"{text}; test ELBO {tested[-1].test_elbo:,.1f} nats at epoch {tested[-1].epoch:.0f}."
    return f"{text}; the test ELBO comes at the first epoch's end."


def live_map(run_dir: Path) -> None:
    """The run's newest snapshot: its latent map, samples from fixed z and reconstructions, and a caption that
    says where it was taken; one line while the run has none. A finished run keeps showing its last."""
    folder = snapshot_dir(run_dir / "model.safetensors")
    files = snapshot_files(folder)
    now = stamp(files)
    run = frames(str(folder), now) if files else None
    if run is None or not run.snapshots:
        st.caption("No snapshot of this run yet: the map appears as training starts (the untrained model first).")
        return
    colours = (None, None)
    if (run_dir / "model.safetensors").is_file():
        colours = _colouring(run_dir.name, files[0].stat().st_mtime_ns, run.snapshots[-1].index)
    st.plotly_chart(_figure(str(folder), now, *colours), key=f"live_map_{run_dir.name}",
                    config={"displayModeBar": False})
    st.caption(caption(run))
