"""Slow, cacheable numbers that pages wait for (UMAP, t-SNE, IW curves and estimates, the Estimator lab's
cells), computed by one background process per server, `python -m vae.background_process` (that file says
why a process and what the two say to each other).

A page submits a `Task` (a name from `vae.derived.TASKS` and JSON arguments, never a function) under a key,
shows something meanwhile, and a fragment reruns the app when the future is done; the result itself is read
from the runs folder's cache, where the process put it. The worker's reader thread never calls `st.*`: it
only resolves futures.
"""
from __future__ import annotations

import atexit
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from vae.background_process import task_line
from vae.checkpoint import Checkpoint
from vae.job_process import child_env, death_sentence

from . import state

CLOSE_S = 5.0  # how long a closed process may take to exit before it is killed


class BackgroundError(RuntimeError):
    """Background work that failed: the process's sentence, or why the process ended."""


@dataclass(frozen=True)
class Task:
    name: str  # a key of vae.derived.TASKS
    args: dict  # JSON: runs_root, checkpoint (a path, or None for an upload), sha256, the function's arguments
    upload: bytes | None = field(default=None, repr=False)  # an uploaded checkpoint, which has no file


def task(name: str, ck: Checkpoint, **args) -> Task:
    """The task `name` for this session's checkpoint `ck`: a file's path, or an upload's bytes (uploads live only
    in the session; the worker gives the process a private temporary copy while it needs one)."""
    common = {"runs_root": str(state.settings().runs_root), "sha256": ck.sha256}
    if ck.path is not None:
        return Task(name, {**common, "checkpoint": str(ck.path), **args})
    _, data = st.session_state["uploads"][ck.sha256]
    return Task(name, {**common, "checkpoint": None, **args}, upload=data)


@dataclass
class _Child:
    """One background process and the futures it still owes, by task id."""
    popen: subprocess.Popen
    pending: dict[int, tuple[tuple, Future, str | None]] = field(default_factory=dict)  # id -> key, future, upload


class BackgroundWorker:
    """Futures keyed by what they compute, so two sessions asking for the same thing share one. The process is
    started at the first submit and again at the next submit after it died."""

    def __init__(self, command: list[str] | None = None):
        self._command = command or [sys.executable, "-m", "vae.background_process"]
        self._futures: dict[tuple, Future] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._child: _Child | None = None
        self._uploads: dict[str, list] = {}  # sha256 -> [temporary path, tasks still using it]
        self._tmp: Path | None = None
        self._closed = False
        atexit.register(self.close)

    @property
    def pid(self) -> int | None:
        """The background process's id, while there is one."""
        with self._lock:
            return self._child.popen.pid if self._child else None

    def submit(self, key: tuple, task: Task) -> Future:
        """The future for `key`, started once. A failed one is kept, so the page shows its error instead of
        rerunning a computation that fails again; `forget` allows a retry. The future's result is True: the
        value is in the runs folder's cache."""
        with self._lock:
            future = self._futures.get(key)
            if future is None:
                future = self._futures[key] = Future()
                self._send(key, future, task)
            # Succeeded work lives on in the runs folder's cache; only pending and failed futures are kept.
            for done in [k for k, f in self._futures.items() if k != key and f.done() and f.exception() is None]:
                del self._futures[done]
            return future

    def forget(self, key: tuple) -> None:
        with self._lock:
            self._futures.pop(key, None)

    def close(self) -> None:
        """End the process (closing its input is what stops it) and remove the temporary copies of uploads."""
        with self._lock:
            self._closed, child, self._child = True, self._child, None
        if child is not None:
            _close_input(child.popen)
            try:
                child.popen.wait(timeout=CLOSE_S)
            except subprocess.TimeoutExpired:
                child.popen.kill()
                child.popen.wait()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # -- internals (called with the lock held) ----------------------------------------------
    def _send(self, key: tuple, future: Future, task: Task) -> None:
        if self._closed:
            return future.set_exception(BackgroundError("the server is shutting down."))
        if self._child is None or self._child.popen.poll() is not None:
            try:
                self._child = self._start()
            except Exception as err:  # no process (memory, limits): the page says so and may retry
                self._child = None
                return future.set_exception(BackgroundError(f"the background process could not start: {err}."))
        task_id, args, upload = next(self._ids), dict(task.args), None
        if task.upload is not None:
            upload, args["checkpoint"] = task.args["sha256"], self._upload_path(task.args["sha256"], task.upload)
        self._child.pending[task_id] = (key, future, upload)
        try:
            self._child.popen.stdin.write(task_line(task_id, task.name, args))
            self._child.popen.stdin.flush()
        except (OSError, ValueError):  # it has just died: its reader thread fails this future with the reason
            pass

    def _start(self) -> _Child:
        popen = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env())
        child = _Child(popen)
        threading.Thread(target=self._follow, args=(child,), name="vae-background-reader", daemon=True).start()
        return child

    def _upload_path(self, sha256: str, data: bytes) -> str:
        """A private temporary copy of an upload (readable by this user only), shared by its pending tasks."""
        if sha256 not in self._uploads:
            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="vae-background-"))  # mode 0700
            path = self._tmp / f"{sha256}.safetensors"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self._uploads[sha256] = [path, 0]
        self._uploads[sha256][1] += 1
        return str(self._uploads[sha256][0])

    def _release_upload(self, sha256: str | None) -> None:
        if sha256 is None or sha256 not in self._uploads:
            return
        entry = self._uploads[sha256]
        entry[1] -= 1
        if entry[1] <= 0:
            entry[0].unlink(missing_ok=True)
            del self._uploads[sha256]

    # -- the reader thread: no UI calls, only futures resolved --------------------------------
    def _follow(self, child: _Child) -> None:
        """Resolve futures from the process's answers; when its output ends, it has died: fail the rest."""
        fd, buffered = child.popen.stdout.fileno(), bytearray()
        while True:
            select.select([fd], [], [])
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # its stdout closed: the process has ended (a cut last line is dropped)
                break
            buffered += chunk
            *lines, rest = buffered.split(b"\n")
            buffered = bytearray(rest)
            for line in lines:
                try:
                    answer = json.loads(line)
                except ValueError:  # never sent by our process; dropped rather than stopping every answer after it
                    continue
                if isinstance(answer, dict):
                    self._answer(child, answer)
        returncode = child.popen.wait()
        child.popen.stdout.close()
        with self._lock:
            sentence = ("the server is shutting down." if self._closed
                        else death_sentence(returncode, "the background process"))
            for _, future, upload in child.pending.values():
                future.set_exception(BackgroundError(sentence))
                self._release_upload(upload)
            child.pending.clear()
            if self._child is child:
                self._child = None

    def _answer(self, child: _Child, answer: dict) -> None:
        with self._lock:
            entry = child.pending.pop(answer.get("id"), None)
            if entry is None:
                return
            _, future, upload = entry
            self._release_upload(upload)
        if answer.get("ok"):
            future.set_result(True)
        else:
            future.set_exception(BackgroundError(str(answer.get("error") or "the background task failed.")))


def _close_input(popen: subprocess.Popen) -> None:
    try:
        popen.stdin.close()
    except OSError:  # the process has gone: nothing left to flush to
        pass


@st.cache_resource(on_release=BackgroundWorker.close)
def worker() -> BackgroundWorker:
    return BackgroundWorker()


def cached_or_pending(key: tuple, read_cached, task: Task, *, what: str) -> tuple[object | None, Future | None]:
    """(value, None) when `read_cached()` has it; (None, future) while the background process computes it (pass
    the future to `rerun_when_done`); (None, None) after a failure, which is shown with a Try again button.
    The task must keep its result where `read_cached` finds it (the runs folder's cache)."""
    value = read_cached()
    if value is not None:
        return value, None
    future = worker().submit(key, task)
    if not future.done():
        return None, future
    if future.exception() is None:  # done, yet not in the cache: someone emptied it meanwhile, so again
        return None, resubmit(key, task)
    st.error(f"{what} could not be computed: {future.exception()}")
    if st.button("Try again", key="retry_" + "_".join(str(part)[:16] for part in key)):
        worker().forget(key)
        st.rerun()
    return None, None


def resubmit(key: tuple, task: Task) -> Future:
    """A fresh future for work that finished but whose result is no longer in the cache."""
    worker().forget(key)
    return worker().submit(key, task)


@st.fragment(run_every=2.0)
def rerun_when_done(*futures: Future) -> None:
    """One poller per page run, however many results it waits for: the page reruns as soon as any is ready
    (and waits again for the rest), so a page never carries several timers that each rerun it."""
    if any(f.done() for f in futures):
        st.rerun(scope="app")
