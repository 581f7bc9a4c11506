"""The run writer: a trainer's callback that keeps a run folder (vae/runs.py) as training goes.

It writes `metrics.jsonl` (each record appended as the trainer logs it), and at every epoch's end
the resume state, the checkpoint and the epoch's snapshot (vae/snapshots.py), each file replaced
atomically, in that order; the untrained model's snapshot (step 0) when a new run starts; and between
epoch ends a snapshot at the first logged step `snapshot_every` steps or more after the last snapshot
(spaced further for a very long run: snapshots.snapshot_interval), so that a long epoch's map is seen
forming; the records of pauses and changes (vae/control.py) as they come, and a paused run's snapshot.
It must be the trainer's first callback (`train_run` attaches it first): whoever hears an
epoch after it can open that epoch's checkpoint. Resuming, it forgets the abandoned future first:
metrics logged and snapshots taken after the resume state's step (a run killed mid-epoch left them).
With several processes, rank 0 alone has a writer.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoint import checkpoint_history, save_checkpoint, save_resume_state
from .config import TrainConfig
from .data import Dataset
from .runs import RunDir, append_metrics, read_metrics, truncate_metrics
from .snapshots import Probe, drop_after, make_probe, save_snapshot, snapshot_dir, snapshot_interval, take_snapshot

if TYPE_CHECKING:  # annotations only: the trainer imports this module to wire train_run
    from .train import Trainer, TrainEvent


class RunWriter:
    """Writes `run` from the events of a Trainer training on `data` with `config`."""

    def __init__(self, run: RunDir, data: Dataset, config: TrainConfig):
        self.run, self.data, self.config = run, data, config
        self.probe: Probe | None = None  # what every snapshot looks at, fixed at "start"
        self.steps_per_epoch = math.ceil(len(data.x_train) / config.batch_size)
        # config.epochs is the total to reach (a resumed run's too): the bound on the count is the whole run's
        self.every = snapshot_interval(config.snapshot_every, config.epochs * self.steps_per_epoch)
        self.epoch_began = 0  # the step the current epoch began at (a resumed run's batch size may differ)
        self.last_snapshot = 0  # the step of the last snapshot written (or the resume state's)

    def attach(self, trainer: Trainer) -> None:
        """Subscribe to `trainer`'s events; attach before any other callback (module docstring)."""
        trainer.add_callback(self.on_start, ("start",))
        trainer.add_callback(self.on_step, ("step",))
        trainer.add_callback(self.on_epoch, ("epoch",))
        trainer.add_callback(self.on_control, ("pause", "change"))
        trainer.add_callback(self.on_end, ("end",))

    def resume(self, step: int, epoch: int) -> list[dict]:
        """Go on from a resume state's `step` (after `epoch` epochs): drop the records logged and the snapshots
        taken after that step; return the records kept (the run's history up to there)."""
        truncate_metrics(self.run.metrics, step)
        drop_after(snapshot_dir(self.run.checkpoint), step)
        return read_metrics(self.run.metrics)

    # -- the events ---------------------------------------------------------------------
    def on_start(self, event: TrainEvent) -> None:
        self.probe = make_probe(event.test_inputs, self.data.y_test, event.model.config.latent_dim,
                                self.config.seed)
        self.epoch_began = self.last_snapshot = event.state.step  # a resumed run's last snapshot: its resume step
        if event.state.epoch == 0:
            self.snapshot(event)  # the untrained model: where the replay starts

    def on_step(self, event: TrainEvent) -> None:
        append_metrics(self.run.metrics, event.records)
        step = event.state.step
        ends_epoch = step - self.epoch_began >= self.steps_per_epoch  # its "epoch" event snapshots it, with a test ELBO
        if self.every and step - self.last_snapshot >= self.every and not ends_epoch:
            self.snapshot(event)

    def on_control(self, event: TrainEvent) -> None:
        """A pause or a change (vae/control.py): its record; and a paused run's map, so that a class taking
        one minibatch at a time sees what each step did (unless this step has one already)."""
        append_metrics(self.run.metrics, event.records)
        if event.kind == "pause" and event.state.step != self.last_snapshot:
            self.snapshot(event)

    def on_epoch(self, event: TrainEvent) -> None:
        append_metrics(self.run.metrics, event.records)
        self._save(event)
        self.epoch_began = event.state.step  # the epoch just done is whole: its snapshot's epoch is state.epoch
        self.snapshot(event, event.records[1]["elbo"])

    def on_end(self, event: TrainEvent) -> None:
        """A run stopped between epoch ends gets its map at the step it stopped on, so that Replay ends where
        the class last saw it (a resume from the last epoch's checkpoint drops it again: `resume`). A
        diverged run does not: its weights are not finite."""
        if event.result.status == "stopped" and self.probe is not None and event.state.step != self.last_snapshot:
            self.snapshot(event)
        if self.run.checkpoint.exists():
            event.result.checkpoint = self.run.checkpoint

    # -- the files ----------------------------------------------------------------------
    def _save(self, event: TrainEvent) -> None:
        """End of an epoch: the resume state, then the checkpoint, each replaced atomically."""
        state, (train, test) = event.state, event.records
        summary = {"epochs": state.epoch, "step": state.step, "seconds": round(state.seconds, 2),
                   "train_elbo": train["elbo"], "test_elbo": test["elbo"],
                   "threads": event.threads.to_dict() if event.threads else None,
                   **({"lr_search": state.lr_search.to_dict()} if state.lr_search else {})}
        config = (state.config or self.config).to_dict()  # the trainer's: its lr the one a search chose
        save_resume_state(self.run.resume, event.model, state.optimizer, step=state.step, epoch=state.epoch,
                          generators=state.generators, train_config=config)
        save_checkpoint(self.run.checkpoint, event.model, train_config=config,
                        dataset=self.data.info(), history=checkpoint_history(state.history), summary=summary)

    def snapshot(self, event: TrainEvent, test_elbo: float | None = None) -> Path:
        """The map, samples and reconstructions at the event's step, for the live map and the replay: any
        event after "start" may have one (a run paused after a step, too); a second one at the same step
        replaces the first. `test_elbo`: the epoch's, at an epoch's end."""
        state = event.state
        epoch = state.epoch + (state.step - self.epoch_began) / self.steps_per_epoch  # fractional between ends
        path = save_snapshot(snapshot_dir(self.run.checkpoint), epoch, state.step,
                             take_snapshot(event.model, self.probe), test_elbo)
        self.last_snapshot = state.step
        return path
