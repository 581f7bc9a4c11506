"""Snapshots of a run at each epoch, so the app can replay how the latent space organised itself.

Each snapshot looks at the same things: a fixed probe of test images (their posterior means make
the map), 16 fixed z from the prior (decoded: the samples) and 16 fixed test images (reconstructed).
One small `.safetensors` file per epoch, `epoch-00012.safetensors`, written atomically into the run's
`snapshots/` folder; epoch 0 is the untrained model. A bundled checkpoint `assets/NAME.safetensors`
keeps its snapshots in `assets/NAME.snapshots/`. Files hold numbers only (no pickle) and are read
with the same refusal of anything unexpected as checkpoints.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as np_load
from safetensors.numpy import save as np_save

from .geometry import align_sequence, plane
from .model import VAE, gaussian_kl_per_dim
from .pictures import to_uint8
from .storage import atomic_write_bytes

PROBE_POINTS = 500  # map points per snapshot: enough to see classes separate, ~4 KB per epoch
SHOWN = 16  # samples and reconstructions per snapshot
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024
MAX_SNAPSHOTS = 5000
FILE_PATTERN = re.compile(r"^epoch-(\d{5})\.safetensors$")
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
    epoch: int
    step: int
    test_elbo: float | None
    index: np.ndarray
    labels: np.ndarray
    coords: np.ndarray  # [P, 2]: the latent itself for D <= 2, else its principal plane at that epoch
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


def save_snapshot(folder: str | Path, epoch: int, step: int, arrays: dict[str, np.ndarray],
                  test_elbo: float | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"epoch": str(epoch), "step": str(step), "test_elbo": json.dumps(test_elbo)}
    data = np_save({k: np.ascontiguousarray(v, dtype=ARRAYS[k]) for k, v in arrays.items()}, metadata=meta)
    path = folder / f"epoch-{epoch:05d}.safetensors"
    atomic_write_bytes(path, data)
    return path


def drop_after(folder: str | Path, epoch: int) -> None:
    """A resumed run goes on from `epoch`: later snapshots belong to the abandoned future."""
    for path in snapshot_files(Path(folder)):
        if int(FILE_PATTERN.match(path.name).group(1)) > epoch:
            path.unlink(missing_ok=True)


def snapshot_files(folder: Path) -> list[Path]:
    """A snapshot folder's epoch files, in epoch order ([] when there is no folder)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if FILE_PATTERN.match(p.name) and p.is_file())


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
        epoch, step = int(meta["epoch"]), int(meta["step"])
    except (KeyError, ValueError):
        raise SnapshotError(f"{path.name} lacks its epoch and step.") from None
    return Snapshot(epoch=epoch, step=step, test_elbo=test_elbo if isinstance(test_elbo, (int, float)) else None,
                    **{k: arrays[k] for k in ARRAYS})


def load_snapshots(folder: str | Path) -> list[Snapshot]:
    """Every readable snapshot in `folder`, by epoch; unreadable files are skipped (a replay with a
    missing frame beats none), and so are snapshots whose probe differs from the last one's."""
    snaps = []
    for path in snapshot_files(Path(folder))[:MAX_SNAPSHOTS]:
        try:
            snaps.append(read_snapshot(path))
        except (SnapshotError, OSError):
            continue
    if not snaps:
        return []
    last = snaps[-1]
    return [s for s in snaps if np.array_equal(s.index, last.index) and s.kl_per_dim.shape == last.kl_per_dim.shape
            and s.samples.shape == last.samples.shape]


def replay_coords(snapshots: list[Snapshot], latent_dim: int) -> list[np.ndarray]:
    """Each snapshot's map, ready to animate: a latent of one or two dimensions is shown as it is; a
    larger one's principal plane is rotated (or reflected) onto the last epoch's, because a PCA's signs
    and order are arbitrary and would otherwise flip from one frame to the next."""
    coords = [s.coords for s in snapshots]
    return coords if latent_dim <= 2 else align_sequence(coords)


def evenly(items: list, limit: int) -> list:
    """At most `limit` items, first and last kept, evenly spaced between (frames of a long run)."""
    if len(items) <= limit:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, limit).round().astype(int)]
