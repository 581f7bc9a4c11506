"""The run writer: a trainer's callback that keeps a run folder (vae/runs.py) as training goes.

It writes `metrics.jsonl` (each record appended as the trainer logs it), and at every epoch's end
the resume state, the checkpoint and the epoch's snapshot (vae/snapshots.py), each file replaced
atomically, in that order; the untrained model's snapshot (epoch 0) when a new run starts. It must
be the trainer's first callback (`train_run` attaches it first): whoever hears an epoch after it can
open that epoch's checkpoint. Resuming, it forgets the abandoned future first: metrics logged after
the resume state's step and snapshots after its epoch (a run killed mid-epoch left them).
With several processes, rank 0 alone has a writer.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .checkpoint import checkpoint_history, save_checkpoint, save_resume_state
from .config import TrainConfig
from .data import Dataset
from .runs import RunDir, append_metrics, read_metrics, truncate_metrics
from .snapshots import Probe, drop_after, make_probe, save_snapshot, snapshot_dir, take_snapshot

if TYPE_CHECKING:  # annotations only: the trainer imports this module to wire train_run
    from .train import Trainer, TrainEvent


class RunWriter:
    """Writes `run` from the events of a Trainer training on `data` with `config`."""

    def __init__(self, run: RunDir, data: Dataset, config: TrainConfig):
        self.run, self.data, self.config = run, data, config
        self.probe: Probe | None = None  # what every snapshot looks at, fixed at "start"

    def attach(self, trainer: Trainer) -> None:
        """Subscribe to `trainer`'s events; attach before any other callback (module docstring)."""
        trainer.add_callback(self.on_start, ("start",))
        trainer.add_callback(self.on_step, ("step",))
        trainer.add_callback(self.on_epoch, ("epoch",))
        trainer.add_callback(self.on_step, ("pause", "change"))  # their records, appended as they come
        trainer.add_callback(self.on_end, ("end",))

    def resume(self, step: int, epoch: int) -> list[dict]:
        """Go on from a resume state's `step` and `epoch`: drop the records logged after it and the
        snapshots of later epochs; return the records kept (the run's history up to there)."""
        truncate_metrics(self.run.metrics, step)
        drop_after(snapshot_dir(self.run.checkpoint), epoch)
        return read_metrics(self.run.metrics)

    # -- the events ---------------------------------------------------------------------
    def on_start(self, event: TrainEvent) -> None:
        self.probe = make_probe(event.test_inputs, self.data.y_test, event.model.config.latent_dim,
                                self.config.seed)
        if event.state.epoch == 0:
            self._snapshot(event, None)  # the untrained model: where the replay starts

    def on_step(self, event: TrainEvent) -> None:
        append_metrics(self.run.metrics, event.records)

    def on_epoch(self, event: TrainEvent) -> None:
        append_metrics(self.run.metrics, event.records)
        self._save(event)
        self._snapshot(event, event.records[1]["elbo"])

    def on_end(self, event: TrainEvent) -> None:
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

    def _snapshot(self, event: TrainEvent, test_elbo: float | None) -> None:
        """The map, samples and reconstructions at this epoch, for the app's replay."""
        save_snapshot(snapshot_dir(self.run.checkpoint), event.state.epoch, event.state.step,
                      take_snapshot(event.model, self.probe), test_elbo)
