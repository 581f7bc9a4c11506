"""The training queue that every server process on one runs folder shares, through files in `<runs>/.jobs/`.

`python -m vae serve` starts several Streamlit processes (replicas) on one runs folder, and a class may
spread them over several machines with the runs folder on shared storage: `VAE_MAX_JOBS` must then
count the jobs of all of them, not of one process. Two kinds of file, both held with flock(2):

- `slot-K` (K < the limit): a running job holds one locked for as long as its training process lives
  (the supervising thread holds the descriptor, and the training process inherits it, so a server
  killed mid-run leaves the slot taken until its orphaned training process has stopped; over NFS,
  where flock is emulated with POSIX locks that a child does not inherit, only the server's). The kernel
  releases a lock when the last process holding it ends, however it ends, so a server or a training
  process that dies never leaks a slot, and nothing has to be cleaned up.
- `queue/<time>-<n>-<random>`: a waiting job holds its entry locked. Its place in the queue is its
  rank, by submission time, among the entries still locked; an entry nobody holds was left by a
  process that died, and whoever sees it first removes it. Only the first in line tries the slots, so
  jobs start in the order they were submitted, whichever process submitted them.

Each file holds a small JSON object (the run's name, its epochs, which server holds it), so a process
can show what the others train and queue. Locks are probed by opening the file again, so this process
keeps a table of the files it holds itself and never probes those: a second descriptor of a locked
file would, under NFS's POSIX-lock emulation of flock, release the lock when it is closed.
On several machines the folder needs a file system whose locks work across them (NFSv4, CephFS);
submission order then follows the machines' clocks.
"""
from __future__ import annotations

import fcntl
import itertools
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

FOLDER = ".jobs"  # under the runs folder; hidden, and holding no checkpoint, so never listed as a run

_HELD: dict[str, int] = {}  # path -> descriptor of every queue file this process holds locked
_HELD_LOCK = threading.Lock()
_COUNTER = itertools.count()  # orders entries made in the same nanosecond by this process


@dataclass(frozen=True)
class Held:
    """A queue entry or a slot that this process holds locked."""
    path: Path
    fd: int


@dataclass(frozen=True)
class SharedJob:
    """What the shared files say about one queued or running job, whichever process holds it."""
    run_name: str
    state: str  # "queued" or "running"
    place: int  # 1 = next to start; 0 when running
    epochs: int  # the total to reach
    server: str  # the JobRegistry that holds it


class SharedQueue:
    def __init__(self, runs_root: str | os.PathLike, max_running: int):
        self.folder = Path(runs_root) / FOLDER
        self.max_running = max(1, int(max_running))

    # -- a job's way through: enter, wait for a slot, release it ----------------------------------
    def enter(self, info: dict) -> Held:
        """Join the end of the queue. The entry is locked before it is given its name, so nobody can take
        it for a dead process's entry."""
        queue = self.folder / "queue"
        queue.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{next(_COUNTER):06d}-{uuid.uuid4().hex[:8]}"
        tmp = queue / f".{name}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps(info).encode())
        os.rename(tmp, queue / name)  # the lock belongs to the file, whatever its name
        return _hold(queue / name, fd)

    def place(self, entry: Held) -> int:
        """1 + the live entries submitted before this one (0 if it has left the queue)."""
        paths = [path for path, _ in self.queued()]
        return paths.index(entry.path) + 1 if entry.path in paths else 0

    def take_slot(self, entry: Held, info: dict) -> Held | None:
        """A slot for the first in line, if one is free; the entry leaves the queue when it gets one."""
        if self.place(entry) != 1:
            return None
        for k in range(self.max_running):
            path = self.folder / f"slot-{k}"
            if _held_here(path):
                continue
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another process's job is running in it
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(info).encode(), 0)
            except OSError:
                os.close(fd)  # the slot's lock goes with it: nobody is left holding a slot for nothing
                raise
            slot = _hold(path, fd)
            self.leave(entry)
            return slot
        return None

    def leave(self, entry: Held) -> None:
        """Leave the queue (started, or stopped while waiting)."""
        try:
            entry.path.unlink(missing_ok=True)
        finally:
            _release(entry)

    def release(self, slot: Held) -> None:
        """Free a slot once its training process has ended; emptied first, so nobody reads a finished job
        in it."""
        os.ftruncate(slot.fd, 0)
        _release(slot)

    # -- what every process can read ---------------------------------------------------------------
    def queued(self) -> list[tuple[Path, dict]]:
        """Live queue entries, first in line first; entries of dead processes are removed on the way."""
        queue = self.folder / "queue"
        try:
            names = sorted(os.listdir(queue))
        except FileNotFoundError:
            return []
        live = []
        for name in names:
            path = queue / name
            if name.startswith("."):  # an entry being made (or left by a process killed while making it)
                continue
            if _held_here(path) or _held_elsewhere(path):
                live.append((path, _read(path)))
            else:
                _remove_stale(path)
        return live

    def running(self) -> list[dict]:
        """The jobs holding a slot, in any process (slots beyond this process's limit included)."""
        try:
            slots = sorted(p for p in self.folder.glob("slot-*"))
        except OSError:
            return []
        return [info for info in (_read(p) for p in slots if _held_here(p) or _held_elsewhere(p)) if info]

    def jobs(self) -> list[SharedJob]:
        """Every queued or running job on this runs folder, running first, then in queue order."""
        running = [SharedJob(i.get("run", "?"), "running", 0, int(i.get("epochs", 0)), i.get("server", ""))
                   for i in self.running()]
        queued = [SharedJob(i.get("run", "?"), "queued", place, int(i.get("epochs", 0)), i.get("server", ""))
                  for place, (_, i) in enumerate(self.queued(), start=1)]
        return running + queued


# -- the lock files ------------------------------------------------------------------------------
def _hold(path: Path, fd: int) -> Held:
    with _HELD_LOCK:
        _HELD[str(path)] = fd
    return Held(path, fd)


def _release(held: Held) -> None:
    with _HELD_LOCK:
        _HELD.pop(str(held.path), None)
    os.close(held.fd)  # the last descriptor of this process: its lock goes with it


def _held_here(path: Path) -> bool:
    with _HELD_LOCK:
        return str(path) in _HELD


def _held_elsewhere(path: Path) -> bool:
    """Whether another process holds `path` locked (never called for a file this process holds)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False  # nobody holds it; closing the descriptor drops this probe's own lock
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _remove_stale(path: Path) -> None:
    """Remove an entry whose process died, taking its lock first so that a live one is never removed."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except BlockingIOError:  # it is alive after all (it was being renamed into place)
        pass
    finally:
        os.close(fd)


def _read(path: Path) -> dict:
    try:
        info = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):  # removed meanwhile, or being rewritten
        return {}
    return info if isinstance(info, dict) else {}
