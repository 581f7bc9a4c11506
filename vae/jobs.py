"""Background training jobs that the app polls. Thread-safe, UI-free.

The app keeps one `JobRegistry` per server (in a `st.cache_resource`). Each job
trains in its own thread through `train_run`; the thread never touches the UI,
it only updates the job's fields under the registry's lock, and pages read
copies (`Job.snapshot`). At most `max_running` jobs train at once; the rest wait
in a queue that reports each job's place. Only the session that submitted a
job may stop it.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .data import DataError, load_dataset
from .model import ConfigError, ModelConfig
from .runs import RunError, open_run_dir, validate_run_name
from .train import TrainConfig, TrainEvent, train_run

PREVIEW_COUNT = 8
ACTIVE = ("queued", "running")


@dataclass
class JobSpec:
    run_name: str
    dataset: str  # a built-in name or the path of a user file
    model: dict  # ModelConfig fields other than image_shape
    train: TrainConfig
    resume: bool = False
    data_dir: str | None = None


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
    preview: dict[str, np.ndarray] = field(default_factory=dict)  # "reconstructions", "samples", "inputs"
    preview_epoch: int = 0
    queue_position: int = 0  # 1 = next to start; 0 when not queued
    stop_event: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def eta_seconds(self) -> float | None:
        if self.state != "running" or not self.started or self.progress <= 0:
            return None
        elapsed = time.time() - self.started
        return elapsed * (1 - self.progress) / self.progress

    def snapshot(self) -> "Job":
        """A copy a page may read at leisure while the worker goes on."""
        return replace(self, history=list(self.history), preview=dict(self.preview))


class JobRegistry:
    def __init__(self, runs_root: str | Path, *, max_running: int = 1, threads: int = 1):
        self.runs_root = Path(runs_root)
        self.max_running = max(1, int(max_running))
        self.threads = max(1, int(threads))
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        self._queue: list[int] = []
        self._ids = itertools.count(1)

    # -- what pages call ------------------------------------------------------------------
    def submit(self, spec: JobSpec, owner: str) -> Job:
        """Queue a run; refused at once (one sentence) when the name or the folder cannot be used."""
        validate_run_name(spec.run_name)
        out = self.runs_root / spec.run_name
        with self._lock:
            if any(j.out == out and j.state in ACTIVE for j in self._jobs.values()):
                raise RunError(f"a run named {spec.run_name!r} is already queued or training.")
            open_run_dir(out, resume=spec.resume)  # refuses an existing run without resume
            job = Job(id=next(self._ids), spec=spec, owner=owner, out=out)
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._renumber()
            self._start_ready()
            return job.snapshot()

    def stop(self, job_id: int, owner: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise RunError(f"there is no job {job_id}.")
            if job.owner != owner:
                raise PermissionError("only the session that started this run can stop it.")
            if job.state == "queued":
                self._queue.remove(job_id)
                job.state, job.message, job.ended = "stopped", "removed from the queue before it started", time.time()
                self._renumber()
            job.stop_event.set()

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
    def _renumber(self) -> None:
        for place, job_id in enumerate(self._queue, start=1):
            self._jobs[job_id].queue_position = place

    def _start_ready(self) -> None:
        running = sum(1 for j in self._jobs.values() if j.state == "running")
        while self._queue and running < self.max_running:
            job = self._jobs[self._queue.pop(0)]
            job.state, job.started, job.queue_position = "running", time.time(), 0
            running += 1
            threading.Thread(target=self._work, args=(job,), name=f"vae-job-{job.id}", daemon=True).start()
        self._renumber()

    # -- the worker thread: no UI calls, only field updates under the lock -------------------
    def _work(self, job: Job) -> None:
        torch.set_num_threads(self.threads)
        try:
            data = load_dataset(job.spec.dataset, data_dir=job.spec.data_dir)
            model_config = ModelConfig(image_shape=data.image_shape, **job.spec.model)
            inputs = np.array(data.x_test[:PREVIEW_COUNT], np.float32)  # a writable copy for torch
            result = train_run(job.out, data, model_config, job.spec.train, resume=job.spec.resume,
                               callbacks=[lambda event: self._on_event(job, event, inputs)],
                               threads=self.threads, stop_event=job.stop_event)
            state, message = result.status, result.reason
        except (DataError, ConfigError, RunError) as err:
            state, message = "failed", str(err)
        except OSError as err:
            state, message = "failed", f"could not write the run folder: {err.strerror or err}."
        except Exception as err:  # the worker must always leave a readable state behind
            state, message = "failed", f"training failed unexpectedly: {type(err).__name__}: {err}."
        with self._lock:
            job.state, job.message, job.ended = state, message, time.time()
            self._start_ready()

    def _on_event(self, job: Job, event: TrainEvent, inputs: np.ndarray) -> None:
        preview = self._preview(event, inputs) if event.kind == "epoch" else None
        with self._lock:
            job.history.extend(event.records)
            job.progress, job.samples_per_s = event.progress, event.samples_per_s
            if preview is not None:
                job.preview, job.preview_epoch = preview, int(round(event.records[0]["epoch"]))

    @staticmethod
    @torch.no_grad()
    def _preview(event: TrainEvent, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Reconstructions of a few test images and prior samples, for the strip that refreshes each epoch."""
        model = event.model
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        x = torch.from_numpy(inputs).to(device)
        z = torch.randn(PREVIEW_COUNT, model.config.latent_dim, generator=torch.Generator().manual_seed(0)).to(device)
        out = {"inputs": inputs, "reconstructions": model(x).cpu().numpy(),
               "samples": model.decode_mean(z).cpu().numpy()}
        model.train(was_training)
        return out
