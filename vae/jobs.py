"""Background training jobs that the app polls. Thread-safe, UI-free.

The app keeps one `JobRegistry` per server (in a `st.cache_resource`). Each job
trains in a child process, `python -m vae.job_process` (that file says why and
what they say to each other), followed by a thread of the registry's that never
touches the UI: it only copies the child's lines into the job's fields under the
registry's lock, and pages read copies (`Job.snapshot`). At most `max_running` jobs train at once; the rest wait
in a queue that reports each job's place. The limit and the queue are those of the runs folder, shared by
every server process on it (`vae.job_queue`): a waiting job's thread polls for a slot, and holds it for as
long as the training process lives. Only the session that submitted a job may stop it, pause it, take
it a step or an epoch at a time, or change its learning rate and beta (vae/control.py): those become
control lines that the supervising thread writes to the child. A paused job keeps its slot.
"""
from __future__ import annotations

import errno
import itertools
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from .config import DEVICES, ConfigError
from .control import Change, ControlError
from .job_process import COMMANDS, child_env, control_line, death_sentence, job_line
from .job_queue import Held, SharedJob, SharedQueue
from .job_spec import JobSpec
from .runs import RunError, open_run_dir, validate_run_name

ACTIVE = ("queued", "running")
CONTROLS = tuple(c for c in COMMANDS if c != "stop")  # what the owner may do to a running job (stop: `stop`)
POLL_S = 0.2  # how often the supervising thread looks at the Stop button while the child is quiet
QUEUE_POLL_S = 0.5  # how often a waiting job looks for a free slot (a few small file operations)
JOIN_S = 30.0  # how long a stopped child may take to finish its step and release its run folder


def devices_here() -> tuple[str, ...]:
    """The devices a job may ask for on this machine: cpu and auto always, cuda when there is one."""
    import torch  # here, not at import: the app's first page imports this module

    return tuple(d for d in DEVICES if d != "cuda" or torch.cuda.is_available())


@dataclass
class Job:
    id: int
    spec: JobSpec
    owner: str
    out: Path
    state: str = "queued"  # queued, running, finished, stopped, diverged, failed
    message: str = ""
    progress: float = 0.0
    samples_per_s: float = 0.0
    started: float | None = None
    ended: float | None = None
    history: list[dict] = field(default_factory=list)
    queue_position: int = 0  # 1 = next to start; 0 when not queued
    pid: int | None = None  # the training process, once started
    paused: bool = False  # waiting for a step, an epoch or resume (vae/control.py), as the child last said
    paused_seconds: float = 0.0  # time spent paused so far (not training: left out of the ETA)
    paused_since: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event, repr=False)
    outbox: list[bytes] = field(default_factory=list, repr=False)  # control lines for the child, in order

    @property
    def in_force(self) -> tuple[float, float]:
        """(learning rate, beta) the run trains with now: its last pause or change record's (which know a
        searched step size), else the spec's."""
        last = next((r for r in reversed(self.history) if r.get("kind") in ("pause", "change")), None)
        return (float(last["lr"]), float(last["beta"])) if last else (self.spec.train.lr, self.spec.train.beta)

    @property
    def eta_seconds(self) -> float | None:
        if self.state != "running" or not self.started or self.progress <= 0:
            return None
        elapsed = time.time() - self.started - self.paused_seconds
        return elapsed * (1 - self.progress) / self.progress

    def snapshot(self) -> "Job":
        """A copy a page may read at leisure while the worker goes on."""
        return replace(self, history=list(self.history), outbox=[])


class JobRegistry:
    def __init__(self, runs_root: str | Path, *, max_running: int = 1, threads: int = 1):
        self.runs_root = Path(runs_root)
        self.max_running = max(1, int(max_running))
        self.threads = max(1, int(threads))
        self.queue = SharedQueue(self.runs_root, self.max_running)
        self.server = uuid.uuid4().hex  # names this registry in the shared files, to tell its jobs from others'
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        self._entries: dict[int, Held] = {}  # queued jobs' entries in the shared queue
        self._slots: dict[int, Held] = {}  # running jobs' slots
        self._ids = itertools.count(1)

    # -- what pages call ------------------------------------------------------------------
    def submit(self, spec: JobSpec, owner: str) -> Job:
        """Queue a run; refused at once (one sentence) when the name or the folder cannot be used."""
        validate_run_name(spec.run_name)
        out = self.runs_root / spec.run_name
        with self._lock:
            if (any(j.out == out and j.state in ACTIVE for j in self._jobs.values())
                    or any(j.run_name == spec.run_name for j in self.queue.jobs())):  # here or in another server
                raise RunError(f"a run named {spec.run_name!r} is already queued or training.")
            open_run_dir(out, resume=spec.resume)  # refuses an existing run without resume
            job = Job(id=next(self._ids), spec=spec, owner=owner, out=out)
            try:
                self._entries[job.id] = self.queue.enter(self._shared_info(job))
                self._jobs[job.id] = job
                self._advance(job)  # the first job starts at once, and the others know their place
            except OSError as err:  # the shared queue cannot be used: refused, nothing left behind
                self._jobs.pop(job.id, None)
                self._drop_entry(job.id)
                raise RunError(f"the training queue in {self.queue.folder} cannot be used: "
                               f"{err.strerror or err}.") from err
            threading.Thread(target=self._work, args=(job,), name=f"vae-job-{job.id}", daemon=True).start()
            return job.snapshot()

    def stop(self, job_id: int, owner: str) -> None:
        with self._lock:
            job = self._owned(job_id, owner, "stop")
            if job.state == "queued":
                self.queue.leave(self._entries.pop(job_id))
                job.state, job.message, job.ended = "stopped", "removed from the queue before it started", time.time()
            job.stop_event.set()

    def control(self, job_id: int, owner: str, command: str, *, lr: float | None = None,
                beta: float | None = None) -> None:
        """Pause, resume, take one step or the rest of an epoch, or change the learning rate and/or beta of a
        running job; refused in one sentence (RunError; PermissionError for another session's job)."""
        if command not in CONTROLS:
            raise ValueError(f"a job takes {', '.join(CONTROLS)}, not {command!r}.")
        with self._lock:
            job = self._owned(job_id, owner, "pause, step or change")
            if job.state != "running":
                raise RunError(f"the run is {job.state}, not training: there is nothing to pause or step.")
            if command == "change":
                _check_change(job, lr, beta)
                job.outbox.append(control_line("change", **{k: v for k, v in (("lr", lr), ("beta", beta))
                                                            if v is not None}))
                return
            job.outbox.append(control_line(command))  # `paused` follows what the child says it does
    def get(self, job_id: int) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.snapshot() if job else None

    def jobs(self) -> list[Job]:
        with self._lock:
            return [j.snapshot() for j in sorted(self._jobs.values(), key=lambda j: j.id)]

    def active_for(self, run_name: str) -> Job | None:
        with self._lock:
            for job in self._jobs.values():
                if job.spec.run_name == run_name and job.state in ACTIVE:
                    return job.snapshot()
        return None

    def elsewhere(self) -> list[SharedJob]:
        """Jobs queued or running in other server processes on the same runs folder (other replicas)."""
        return [j for j in self.queue.jobs() if j.server != self.server]

    def wait(self, job_id: int, timeout: float) -> Job | None:
        """Block until the job leaves the queue and finishes (for tests and the command line)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.get(job_id)
            if job is None or job.state not in ACTIVE:
                return job
            time.sleep(0.05)
        return self.get(job_id)

    # -- internals (called with the lock held) ----------------------------------------------
    def _owned(self, job_id: int, owner: str, doing: str) -> Job:
        """The job, if `owner` started it: only that session may `doing` it."""
        job = self._jobs.get(job_id)
        if job is None:
            raise RunError(f"there is no job {job_id}.")
        if job.owner != owner:
            raise PermissionError(f"only the session that started this run can {doing} it.")
        return job

    def _shared_info(self, job: Job) -> dict:
        return {"run": job.spec.run_name, "epochs": job.spec.train.epochs, "server": self.server, "job": job.id,
                "pid": os.getpid(), "submitted": time.time()}

    def _drop_entry(self, job_id: int) -> None:
        entry = self._entries.pop(job_id, None)
        if entry is not None:
            try:
                self.queue.leave(entry)
            except OSError:  # its folder has gone: closing the descriptor (done by leave) is what counts
                pass

    def _advance(self, job: Job) -> None:
        """A queued job takes a slot if it is first in line and one is free; otherwise it learns its place."""
        if job.state != "queued":
            return
        entry = self._entries[job.id]
        slot = self.queue.take_slot(entry, self._shared_info(job))
        if slot is None:
            job.queue_position = self.queue.place(entry)
            if job.queue_position == 0:  # its entry was deleted under it (the runs folder tidied by hand)
                raise FileNotFoundError(errno.ENOENT, "this job's place in the queue was deleted", str(entry.path))
            return
        del self._entries[job.id]
        self._slots[job.id] = slot
        job.state, job.started, job.queue_position = "running", time.time(), 0

    def _advance_all(self) -> None:
        for job in sorted(self._jobs.values(), key=lambda j: j.id):
            self._advance(job)

    # -- the supervising thread: no UI calls, only field updates under the lock -----------------
    def _work(self, job: Job) -> None:
        """Wait for a slot, start the job's training process, and copy what it says into the job until it ends."""
        while True:
            with self._lock:
                try:
                    self._advance(job)
                except OSError as err:  # the runs folder went away or read-only: the job still ends, with a sentence
                    job.state, job.ended = "failed", time.time()
                    job.message = f"the training queue in {self.queue.folder} cannot be used: {err.strerror or err}."
                    self._drop_entry(job.id)  # its place must not hold up every other replica's jobs
                    return
                if job.state != "queued":
                    break
            job.stop_event.wait(QUEUE_POLL_S)  # Stop wakes it at once
        with self._lock:
            if job.state != "running":  # stopped while it waited
                return
            slot = self._slots[job.id]
        try:  # the child inherits the slot's descriptor: the slot stays taken while it lives, even if we die
            child = subprocess.Popen([sys.executable, "-m", "vae.job_process"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=child_env(), pass_fds=(slot.fd,))
        except Exception as err:  # no process (memory, limits): the job still ends, with a sentence
            return self._end(job, "failed", f"the training process could not start: {err}.")
        with self._lock:
            job.pid = child.pid
        try:
            _tell(child, job_line(job.spec, job.out, self.threads))
            state, message = self._follow(job, child)
        except Exception as err:  # the job must always end in a readable state
            state, message = "failed", f"following the training process failed: {type(err).__name__}: {err}."
        _tell(child, b"stop\n")  # a child that already ended ignores it; one still training stops
        try:
            child.stdin.close()
        except OSError:  # the child has gone: nothing left to flush to
            pass
        try:
            child.wait(timeout=JOIN_S)
        except subprocess.TimeoutExpired:  # it ignored its stop: the run keeps its last whole epoch
            child.kill()
            child.wait()
        child.stdout.close()
        self._end(job, state, message)

    def _end(self, job: Job, state: str, message: str) -> None:
        with self._lock:
            job.state, job.message, job.ended, job.paused = state, message, time.time(), False
            self.queue.release(self._slots.pop(job.id))
            self._advance_all()  # a job of ours next in line starts now rather than at its next poll

    def _follow(self, job: Job, child: subprocess.Popen) -> tuple[str, str]:
        """(state, message) from the child's closing line; a child whose output ends without one failed."""
        fd, pending, stop_sent = child.stdout.fileno(), bytearray(), False
        while True:
            if job.stop_event.is_set() and not stop_sent:
                _tell(child, b"stop\n")
                stop_sent = True
            with self._lock:
                lines, job.outbox = job.outbox, []
            for line in lines:
                _tell(child, line)
            if not select.select([fd], [], [], POLL_S)[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:  # its stdout closed: the process has ended (a cut last line is dropped)
                return "failed", death_sentence(child.wait())
            pending += chunk
            *lines, rest = pending.split(b"\n")
            pending = bytearray(rest)
            for line in lines:
                message = json.loads(line)
                if "end" in message:
                    return message["end"], message["message"]
                self._on_event(job, message["kind"], message["records"], message["progress"],
                               message["samples_per_s"])

    def _on_event(self, job: Job, kind: str, records: list[dict], progress: float, samples_per_s: float) -> None:
        with self._lock:
            job.history.extend(records)
            job.progress, job.samples_per_s = progress, samples_per_s
            now = time.time()
            if kind == "pause" and not job.paused:
                job.paused, job.paused_since = True, now
            elif kind in ("step", "epoch") and job.paused:  # it trains again (a press, or its lease ran out)
                job.paused_seconds += now - (job.paused_since or now)
                job.paused, job.paused_since = False, None


def _check_change(job: Job, lr: float | None, beta: float | None) -> None:
    """The checks a change meets in the training process, made first, so that a refusal is said at once."""
    try:
        replace(job.spec.train, changes=(Change(0, lr=lr, beta=beta),))
    except (ControlError, ConfigError) as err:
        raise RunError(str(err)) from None


def _tell(child: subprocess.Popen, line: bytes) -> None:
    """Write to the child's stdin; a child that has ended has nobody reading, which is fine."""
    try:
        child.stdin.write(line)
        child.stdin.flush()
    except (OSError, ValueError):  # a broken pipe, or stdin already closed
        pass
