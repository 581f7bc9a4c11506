"""Snapshots of a run as it trains, so the app can show how the latent space organises itself: live on the
Train page, and replayed afterwards.

Each snapshot looks at the same things: a fixed probe of test images (their posterior means make
the map), 16 fixed z from the prior (decoded: the samples) and 16 fixed test images (reconstructed).
One small `.safetensors` file per snapshot, named by the optimiser step it was taken at,
`step-000001234.safetensors`, written atomically into the run's `snapshots/` folder: the untrained
model (step 0), every epoch's end (with its test ELBO), and every `snapshot_every` steps between
(vae/run_writer.py). Runs of earlier versions kept one per epoch, `epoch-00012.safetensors`; those
still load (the bundled run's do), their step read from the file. A bundled checkpoint
`assets/NAME.safetensors` keeps its snapshots in `assets/NAME.snapshots/`. Files hold numbers only
(no pickle) and are read with the same refusal of anything unexpected as checkpoints.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as np_load
from safetensors.numpy import save as np_save

from .geometry import align_chain, plane
from .model import VAE, gaussian_kl_per_dim
from .pictures import to_uint8
from .storage import atomic_write_bytes

PROBE_POINTS = 500  # map points per snapshot: enough to see classes separate, ~4 KB per snapshot
SHOWN = 16  # samples and reconstructions per snapshot
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024
MAX_SNAPSHOTS = 5000
MAX_STEP_SNAPSHOTS = 1000  # between epoch ends, per run: ~50 MB of 28x28 snapshots at most (snapshot_interval)
FILE_PATTERN = re.compile(r"^step-(\d{9})\.safetensors$")
EPOCH_FILE_PATTERN = re.compile(r"^epoch-(\d{5})\.safetensors$")  # earlier versions': one per epoch, still read
ARRAYS = {"index": np.int64, "labels": np.int64, "coords": np.float32, "kl_per_dim": np.float32,
          "samples": np.uint8, "reconstructions": np.uint8, "inputs": np.uint8}


class SnapshotError(ValueError):
    """A snapshot file that cannot be read; the message is one sentence."""


@dataclass(frozen=True)
class Probe:
    """What every snapshot of one run looks at, fixed by the run's seed."""
    index: np.ndarray  # test rows whose posterior means make the map [P]
    labels: np.ndarray  # their labels, -1 when the data set has none [P]
    x: torch.Tensor  # those images [P, H, W]
    shown: np.ndarray  # positions in the probe of the images shown reconstructed [SHOWN]
    z: torch.Tensor  # fixed prior draws, decoded as the samples [SHOWN, D]


@dataclass(frozen=True)
class Snapshot:
    epoch: float  # epochs done: whole at an epoch's end, fractional between (step 150 of 40-step epochs: 3.75)
    step: int  # optimiser steps taken: what orders snapshots and names their files
    test_elbo: float | None  # at an epoch's end; None for the untrained model and between epoch ends
    index: np.ndarray
    labels: np.ndarray
    coords: np.ndarray  # [P, 2]: the latent itself for D <= 2, else its principal plane at that step
    kl_per_dim: np.ndarray  # [D] mean KL per dimension over the probe
    samples: np.ndarray  # [SHOWN, H, W] uint8
    reconstructions: np.ndarray  # [SHOWN, H, W] uint8
    inputs: np.ndarray  # [SHOWN, H, W] uint8, the originals of the reconstructions


def snapshot_dir(checkpoint_path: str | Path) -> Path:
    """Where a checkpoint's snapshots live: beside a run's model.safetensors, or NAME.snapshots/."""
    path = Path(checkpoint_path)
    if path.name == "model.safetensors":
        return path.parent / "snapshots"
    return path.with_name(path.stem + ".snapshots")


def make_probe(x_test: torch.Tensor, y_test: np.ndarray | None, latent_dim: int, seed: int) -> Probe:
    gen = torch.Generator().manual_seed(seed + 5)
    n = x_test.shape[0]
    index = torch.randperm(n, generator=gen)[:min(PROBE_POINTS, n)].sort().values
    shown = np.linspace(0, len(index) - 1, min(SHOWN, len(index))).round().astype(np.int64)
    labels = np.asarray(y_test)[index.numpy()].astype(np.int64) if y_test is not None else np.full(len(index), -1)
    z = torch.randn((SHOWN, latent_dim), generator=gen)
    return Probe(index=index.numpy(), labels=labels, x=x_test[index.to(x_test.device)], shown=shown, z=z)


@torch.no_grad()
def take_snapshot(model: VAE, probe: Probe) -> dict[str, np.ndarray]:
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        x = probe.x.to(device)
        mu, logvar = model.encode(x)
        kl = gaussian_kl_per_dim(mu, logvar)  # appendix B, per dimension
        shown = torch.as_tensor(probe.shown, device=device)
        return {
            "index": probe.index, "labels": probe.labels,
            "coords": plane(mu.float().cpu().numpy()),
            "kl_per_dim": kl.mean(0).float().cpu().numpy(),
            "samples": to_uint8(model.decode_mean(probe.z.to(device)).float().cpu().numpy()),
            "reconstructions": to_uint8(model.decode_mean(mu[shown]).float().cpu().numpy()),
            "inputs": to_uint8(x[shown].float().cpu().numpy()),
        }
    finally:
        model.train(was_training)


def save_snapshot(folder: str | Path, epoch: float, step: int, arrays: dict[str, np.ndarray],
                  test_elbo: float | None = None) -> Path:
    """Write the snapshot taken at `step` (`epoch` epochs done, fractional between epoch ends)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"epoch": json.dumps(round(float(epoch), 4)), "step": str(step), "test_elbo": json.dumps(test_elbo)}
    data = np_save({k: np.ascontiguousarray(v, dtype=ARRAYS[k]) for k, v in arrays.items()}, metadata=meta)
    path = folder / f"step-{step:09d}.safetensors"
    atomic_write_bytes(path, data)
    return path


def snapshot_interval(every: int, total_steps: int) -> int:
    """Steps between the snapshots taken between epoch ends: `every` (0: none), or wider for a run so long
    that `every` would write more than MAX_STEP_SNAPSHOTS of them (the disk a run's snapshots take is bounded)."""
    if every <= 0:
        return 0
    return max(every, math.ceil(total_steps / MAX_STEP_SNAPSHOTS))


def drop_after(folder: str | Path, step: int) -> None:
    """A resumed run goes on from `step`: later snapshots belong to the abandoned future."""
    for path in snapshot_files(Path(folder)):
        if _file_step(path) > step:
            path.unlink(missing_ok=True)


def _file_step(path: Path) -> int:
    """The step a snapshot file was taken at: its name says it, an earlier version's epoch file its metadata
    (-1, kept, for one that cannot be read: loading skips it anyway)."""
    named = FILE_PATTERN.match(path.name)
    if named:
        return int(named.group(1))
    try:
        return read_snapshot(path).step
    except (SnapshotError, OSError):
        return -1


def _order(path: Path) -> tuple[int, int]:
    """Epoch files first (a folder holds them only from before step names, so before any step file), then
    step files, each by its number."""
    named = FILE_PATTERN.match(path.name)
    return (1, int(named.group(1))) if named else (0, int(EPOCH_FILE_PATTERN.match(path.name).group(1)))


def snapshot_files(folder: Path) -> list[Path]:
    """A snapshot folder's files, in the order they were taken ([] when there is no folder)."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir()
                   if (FILE_PATTERN.match(p.name) or EPOCH_FILE_PATTERN.match(p.name)) and p.is_file()), key=_order)


def read_snapshot(path: Path) -> Snapshot:
    if path.stat().st_size > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"{path.name} is larger than a snapshot can be.")
    data = path.read_bytes()
    try:
        arrays = np_load(data)
        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + header_len]).get("__metadata__", {})
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path.name} is not a readable snapshot ({exc}).") from None
    if set(arrays) != set(ARRAYS) or any(arrays[k].dtype != ARRAYS[k] for k in ARRAYS):
        raise SnapshotError(f"{path.name} does not hold the arrays a snapshot has.")
    if arrays["coords"].ndim != 2 or arrays["coords"].shape[1] != 2 or not np.isfinite(arrays["coords"]).all():
        raise SnapshotError(f"{path.name} has map coordinates of the wrong shape or non-finite values.")
    try:
        test_elbo = json.loads(meta.get("test_elbo", "null"))
        epoch, step = float(meta["epoch"]), int(meta["step"])
    except (KeyError, ValueError):
        raise SnapshotError(f"{path.name} lacks its epoch and step.") from None
    if not (math.isfinite(epoch) and epoch >= 0 and step >= 0):
        raise SnapshotError(f"{path.name} has a negative or non-finite epoch or step.")
    return Snapshot(epoch=epoch, step=step, test_elbo=test_elbo if isinstance(test_elbo, (int, float)) else None,
                    **{k: arrays[k] for k in ARRAYS})


def load_snapshots(folder: str | Path, read: Callable[[Path], Snapshot] = read_snapshot) -> list[Snapshot]:
    """Every readable snapshot in `folder`, by step (one per step); unreadable files are skipped (a replay with
    a missing frame beats none), and so are snapshots whose probe differs from the last one's. `read` reads
    one file (the app passes a cached read_snapshot)."""
    by_step = {}
    for path in snapshot_files(Path(folder))[:MAX_SNAPSHOTS]:
        try:
            snap = read(path)
        except (SnapshotError, OSError):
            continue
        by_step[snap.step] = snap  # a step named twice (an epoch file and a step file): the later file's
    snaps = [by_step[step] for step in sorted(by_step)]
    if not snaps:
        return []
    last = snaps[-1]
    return [s for s in snaps if np.array_equal(s.index, last.index) and s.kl_per_dim.shape == last.kl_per_dim.shape
            and s.samples.shape == last.samples.shape]


def replay_coords(snapshots: list[Snapshot], latent_dim: int) -> list[np.ndarray]:
    """Each snapshot's map, as the Train page draws it live and Replay plays it: a latent of one or two
    dimensions is shown as it is; a larger one's principal plane is rotated (or reflected) onto the frame
    before it, already aligned (geometry.align_chain), because a PCA's signs and order are arbitrary and
    would otherwise flip from one frame to the next. Onto the one before, not onto the last: a frame's
    place then depends only on the frames before it, so the live map never turns when a frame lands and
    Replay plays afterwards exactly the frames the live map showed."""
    coords = [s.coords for s in snapshots]
    return coords if latent_dim <= 2 else align_chain(coords)


def is_epoch_end(snapshot: Snapshot) -> bool:
    """Taken at an epoch's end (it has the epoch's test ELBO) or of the untrained model, not between."""
    return snapshot.test_elbo is not None or snapshot.step == 0


def epoch_text(snapshot: Snapshot) -> str:
    """Its epoch as a frame's label says it: "3" at an epoch's end, "3.75" between."""
    return f"{snapshot.epoch:.0f}" if is_epoch_end(snapshot) else f"{snapshot.epoch:.2f}"


def where(snapshot: Snapshot) -> str:
    """Where in training a snapshot was taken: "step 150 (epoch 3.75)", "step 0 (untrained)"."""
    return f"step {snapshot.step:,} ({'untrained' if snapshot.step == 0 else 'epoch ' + epoch_text(snapshot)})"


def evenly(items: list, limit: int) -> list:
    """At most `limit` items, first and last kept, evenly spaced between (frames of a long run)."""
    if len(items) <= limit:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]
