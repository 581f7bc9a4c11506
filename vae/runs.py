"""The run folder: `<runs>/<name>/` with model.safetensors, resume.safetensors, metrics.jsonl, cache/.

One writer per folder at a time (a lock file made with O_EXCL), so two runs
with the same name never interleave their writes. `metrics.jsonl` is appended
while training, one JSON object per logged step; a reader tolerates a last
line cut off by a crash.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .storage import atomic_write_bytes

CHECKPOINT = "model.safetensors"
RESUME = "resume.safetensors"
METRICS = "metrics.jsonl"
LOCK = ".lock"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RunError(ValueError):
    """A run folder that cannot be used as asked; the message is one sentence."""


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def resume(self) -> Path:
        return self.path / RESUME

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    def holds_run(self) -> bool:
        return any(p.exists() for p in (self.checkpoint, self.resume, self.metrics))


def validate_run_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise RunError(f"run name {name!r} is not allowed; use up to 64 letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit.")
    return name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive claim on a run folder; a lock left by a dead process (kill -9) is taken over."""

    def __init__(self, run: RunDir):
        self.path = run.path / LOCK
        self.held = False

    def acquire(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = int(self.path.read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    owner = -1
                if owner > 0 and _pid_alive(owner) and owner != os.getpid():
                    raise RunError(f"{self.path.parent} is being written by another training process "
                                   f"(pid {owner}); choose another --out.") from None
                if owner == os.getpid():
                    raise RunError(f"{self.path.parent} is already being trained in this process; "
                                   "choose another name.") from None
                self.path.unlink(missing_ok=True)  # stale: its owner died
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self.held = True
            for tmp in self.path.parent.glob(".*.tmp"):  # left by a writer killed mid-write; we own the folder now
                tmp.unlink(missing_ok=True)
            return
        raise RunError(f"could not lock {self.path.parent}; remove {self.path} if no run is using it.")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def open_run_dir(path: str | os.PathLike, *, resume: bool) -> RunDir:
    """Check that `path` may be trained into: new (or empty) without resume, holding a run with it."""
    run = RunDir(Path(path))
    if run.path.exists() and not run.path.is_dir():
        raise RunError(f"{run.path} exists and is not a folder.")
    if resume and not run.resume.exists():
        raise RunError(f"{run.path} holds no resumable run (no {RESUME}); drop --resume to start a new one.")
    if not resume and run.holds_run():
        raise RunError(f"{run.path} already holds a run; pass --resume to continue it, or choose another --out.")
    try:
        run.path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"cannot create the run folder {run.path} ({err.strerror}).") from None
    if not os.access(run.path, os.W_OK):
        raise RunError(f"the run folder {run.path} is not writable.")
    return run


def append_metrics(path: Path, records: list[dict]) -> None:
    """Append records as JSON lines; each line is written whole so a crash cuts at most the last one."""
    if not records:
        return
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Every record of a metrics.jsonl; a line cut off by a crash (the last one) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop records logged after `last_step`: on resume, work since the last checkpoint is redone. A pause at
    `last_step` itself goes too (the resumed run is not paused); a change there stays: it was made after the
    checkpoint was saved as its epoch ended, and the resumed run goes on with it (vae.train.train_run reads it
    back into the run's changes)."""
    kept = [r for r in read_metrics(path) if int(r.get("step", 0)) < last_step
            or (int(r.get("step", 0)) == last_step and r.get("kind") != "pause")]
    atomic_write_bytes(path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept).encode())


def list_runs(root: str | os.PathLike) -> list[RunDir]:
    """Run folders under `root` that hold a finished checkpoint, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if p.is_dir() and (p / CHECKPOINT).exists()]
    return sorted(runs, key=lambda r: r.checkpoint.stat().st_mtime, reverse=True)


def rename_run(run: RunDir, new_name: str) -> RunDir:
    target = run.path.parent / validate_run_name(new_name)
    if target.exists():
        raise RunError(f"a run named {new_name!r} already exists.")
    if (run.path / LOCK).exists():
        raise RunError(f"run {run.name!r} is training; stop it before renaming.")
    run.path.rename(target)
    return RunDir(target)


def delete_run(run: RunDir) -> None:
    if (run.path / LOCK).exists():
        raise RunError(f"run {run.name!r} is training; stop it before deleting.")
    shutil.rmtree(run.path)
