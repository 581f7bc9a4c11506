"""Running a plan: what is left to train for each latent size, trained one after another here (the
command line) or submitted as background jobs (the app). Running a plan again continues what is
unfinished: a finished size is skipped, a stopped one resumed, and a larger budget extends every size.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..checkpoint import CheckpointError, load_checkpoint
from ..config import ConfigError, ModelSettings
from ..job_spec import JobSpec
from ..runs import RunDir, RunError, RunLock
from .plan import Plan, write_manifest
from .results import write_series_csv


def completed_epochs(run: RunDir) -> int:
    """Epochs saved in the run's checkpoint; 0 when there is none (or it cannot be read)."""
    if not run.checkpoint.exists():
        return 0
    try:
        return int(load_checkpoint(run.checkpoint).summary.get("epochs", 0))
    except (CheckpointError, OSError, ValueError):
        return 0


def _clear_unstarted(run: RunDir) -> None:
    """A run stopped inside its first epoch left metrics but nothing to resume from: start it again.
    The lock refuses (RunError) if a live process is training it."""
    lock = RunLock(run)
    lock.acquire()
    try:
        run.metrics.unlink(missing_ok=True)
    finally:
        lock.release()


def job_spec(runs_root: str | os.PathLike, plan: Plan, latent_dim: int, n_train: int) -> JobSpec | None:
    """What training one latent size needs now: None when its run already reached the budget, a
    resuming spec when it stopped short, a fresh one otherwise."""
    run = RunDir(Path(runs_root) / plan.run_name(latent_dim))
    config = plan.train_config(n_train)
    done = completed_epochs(run)
    if done >= config.epochs:
        return None
    resume = run.resume.exists()
    if not resume and run.holds_run() and not run.checkpoint.exists():
        _clear_unstarted(run)
    return JobSpec(run_name=run.name, dataset=plan.dataset, model=ModelSettings(**plan.model_settings(latent_dim)),
                   train=config, resume=resume, data_dir=plan.data_dir)


def run_plan(plan: Plan, runs_root: str | os.PathLike, data, *, train: Callable[[JobSpec, Path], object],
             on_skip: Callable[[int], None] = lambda k: None) -> dict[int, object]:
    """Train every unfinished size, one after another, through `train(spec, out)` (the command line
    passes train_run with its progress bar). Returns latent size -> what `train` returned (None: skipped)."""
    write_manifest(runs_root, plan, len(data.x_train))
    results: dict[int, object] = {}
    for k in plan.latent_dims:
        spec = job_spec(runs_root, plan, k, len(data.x_train))
        if spec is None:
            on_skip(k)
            results[k] = None
            continue
        results[k] = train(spec, Path(runs_root) / spec.run_name)
        write_series_csv(runs_root, plan.name)  # after each size, so a long reproduction shows progress
    return results


def submit_plan(plan: Plan, runs_root: str | os.PathLike, n_train: int, submit: Callable[[JobSpec], int]) -> list[str]:
    """The app's way: one background job per unfinished latent size, each handed to `submit`, which returns
    its place in the queue (0: it started; the app's job registry queues beyond its limit). Returns one
    sentence per size saying what happened to it."""
    write_manifest(runs_root, plan, n_train)
    said = []
    for k in plan.latent_dims:
        try:
            spec = job_spec(runs_root, plan, k, n_train)
            if spec is None:
                said.append(f"Nz = {k}: already trained to the budget.")
                continue
            place = submit(spec)
            said.append(f"Nz = {k}: {'resumed' if spec.resume else 'started'}"
                        + (f", place {place} in the queue." if place else "."))
        except (RunError, ConfigError) as err:
            said.append(f"Nz = {k}: {err}")
    return said
