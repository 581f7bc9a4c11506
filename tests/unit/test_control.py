"""Pause, step, resume and change a run while it trains (vae/control.py), as the Train page's buttons do."""
import threading
import time

import pytest

from vae.checkpoint import load_checkpoint, load_resume_state
from vae.config import ConfigError, TrainConfig
from vae.control import Change, ControlError, TrainControl, in_force
from vae.model import build_model
from vae.runs import read_metrics, truncate_metrics
from vae.train import CONTROL_EVENTS, EVENTS, Trainer, train_run

CONFIG = TrainConfig(epochs=3, batch_size=256, log_every=2, seed=4)  # digits: 6 steps an epoch
STEPS_PER_EPOCH = 6
WAIT_S = 60  # liveness only: a controlled run that does not answer within this is hung


class Watched:
    """A run training in a thread under a TrainControl, with every event it sent."""

    def __init__(self, trainer: Trainer):
        self.trainer, self.events = trainer, []
        self._seen = threading.Condition()
        trainer.add_callback(self._hear, EVENTS)
        self.result = None
        self.thread = threading.Thread(target=self._fit, daemon=True)
        self.thread.start()

    def _fit(self):
        self.result = self.trainer.fit()

    def _hear(self, event):
        with self._seen:
            self.events.append((event.kind, [dict(r) for r in event.records], event.state.step))
            self._seen.notify_all()

    def until(self, kind: str, count: int) -> list:
        """Wait for the `count`-th event of `kind`; every event so far."""
        deadline = time.monotonic() + WAIT_S
        with self._seen:
            while sum(1 for k, *_ in self.events if k == kind) < count:
                assert time.monotonic() < deadline, f"no {count}th {kind!r} event; saw {[k for k, *_ in self.events]}"
                self._seen.wait(0.1)
            return list(self.events)

    def pauses(self) -> list[int]:
        return [step for kind, _, step in self.events if kind == "pause"]

    def finish(self):
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()
        return self.result


def test_a_change_is_checked_and_kept_in_the_config():
    config = TrainConfig(changes=[{"step": 5, "lr": 0.01}, {"step": 5, "beta": 0.5}])
    assert config.changes == (Change(5, lr=0.01), Change(5, beta=0.5))
    assert TrainConfig.from_dict(config.to_dict()) == config  # as a checkpoint stores and reads it
    assert in_force(config.changes, 4, 1e-3, 1.0) == (1e-3, 1.0)
    assert in_force(config.changes, 5, 1e-3, 1.0) == (0.01, 0.5)
    for bad, words in (({"step": 1}, "must set"), ({"step": -1, "lr": 1.0}, "zero or more"),
                       ({"step": 1, "lr": 0.0}, "positive"), ({"step": 1, "beta": float("nan")}, "beta"),
                       ({"step": 1, "lr": 1.0, "eval": "x"}, "a change is")):
        with pytest.raises(ConfigError, match=words):
            TrainConfig(changes=[bad])
    with pytest.raises(ConfigError, match="step order"):
        TrainConfig(changes=[{"step": 5, "lr": 0.1}, {"step": 2, "lr": 0.2}])
    with pytest.raises(ConfigError, match="wake-sleep"):
        TrainConfig(algorithm="wake-sleep", changes=[{"step": 2, "beta": 0.5}])
    with pytest.raises(ControlError, match="positive"):
        TrainControl().change(lr=-1.0)


def test_pause_one_step_a_change_while_paused_one_epoch_and_resume(digits, digits_z2):
    control = TrainControl(paused=True)
    run = Watched(Trainer(build_model(digits_z2, 4), digits, CONFIG, control=control))
    run.until("pause", 1)
    assert run.pauses() == [0] and run.trainer.step == 0  # paused before the first step

    control.step()
    events = run.until("pause", 2)
    assert run.pauses() == [0, 1]
    kind, records, step = events[-2]  # the one step is logged before the pause, so the curves show it
    assert (kind, step, records[0]["kind"]) == ("step", 1, "step")

    control.change(lr=0.01, beta=0.5)
    events = run.until("change", 1)
    _, (record,), step = events[-1]
    assert (record["kind"], record["step"], record["lr"], record["beta"]) == ("change", 1, 0.01, 0.5)
    assert run.trainer.optimizer.param_groups[0]["lr"] == 0.01 and run.trainer.step == 1  # made while paused

    control.finish_epoch()  # the rest of epoch 1, then a pause at the start of epoch 2
    run.until("pause", 3)
    assert run.pauses()[-1] == STEPS_PER_EPOCH and run.trainer.epoch == 1
    control.finish_epoch()  # at an epoch's start: a whole epoch
    run.until("pause", 4)
    assert run.pauses()[-1] == 2 * STEPS_PER_EPOCH

    control.resume()
    result = run.finish()
    assert result.status == "finished" and result.step == 3 * STEPS_PER_EPOCH
    assert run.trainer.config.changes == (Change(1, lr=0.01, beta=0.5),)
    step_betas = [r["beta"] for kind, records, _ in run.events if kind == "step" for r in records]
    assert step_betas[0] == 1.0 and set(step_betas[1:]) == {0.5}


def test_stop_ends_a_paused_run(digits, digits_z2):
    control, stop = TrainControl(paused=True), threading.Event()
    run = Watched(Trainer(build_model(digits_z2, 4), digits, CONFIG, control=control, stop_event=stop))
    run.until("pause", 1)
    stop.set()
    result = run.finish()
    assert result.status == "stopped" and result.step == 0


def test_a_run_trained_again_from_its_config_repeats_its_changes(digits, digits_z2):
    control = TrainControl()
    trainer = Trainer(build_model(digits_z2, 4), digits, CONFIG, control=control)

    def change_after_four_steps(event):
        if event.state.step == 4 and not trainer.config.changes:  # logged at step 4: made before step 5
            control.change(lr=0.02)

    trainer.add_callback(change_after_four_steps, ("step",))
    first = trainer.fit()
    assert trainer.config.changes == (Change(4, lr=0.02),)

    again = Trainer(build_model(digits_z2, 4), digits, trainer.config)  # nobody presses anything
    second = again.fit()
    strip = ("seconds", "threads")
    assert ([{k: v for k, v in r.items() if k not in strip} for r in first.history]
            == [{k: v for k, v in r.items() if k not in strip} for r in second.history])
    assert [r for r in second.history if r["kind"] == "change"][0]["step"] == 4


def test_a_resumed_run_goes_on_with_the_changes_in_force(tmp_path, digits, digits_z2):
    out = tmp_path / "run"
    control, stop = TrainControl(), threading.Event()

    def on_event(event):
        if event.kind == "step" and event.state.step == 2:
            control.change(lr=0.005, beta=0.25)
        if event.kind == "epoch" and event.state.epoch == 1:
            stop.set()  # stopped in epoch 2: the resume state is epoch 1's

    train_run(out, digits, digits_z2, CONFIG, callbacks=[on_event], control=control, stop_event=stop,
              kinds=EVENTS[1:])
    saved = TrainConfig.from_dict(load_resume_state(out / "resume.safetensors").train_config)
    assert saved.changes == (Change(2, lr=0.005, beta=0.25),) and saved.lr == CONFIG.lr  # lr: the start's
    assert TrainConfig.from_dict(load_checkpoint(out / "model.safetensors").train_config).changes == saved.changes
    assert [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "change"][0]["lr"] == 0.005

    heard = []
    # As the command line's --resume does: the config given has no changes; the run's own are kept.
    result = train_run(out, digits, digits_z2, CONFIG, resume=True, callbacks=[heard.append], kinds=EVENTS)
    assert result.status == "finished"
    assert not [e for e in heard if e.kind in CONTROL_EVENTS]  # the change was made before the resume point
    steps = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "step" and r["step"] > STEPS_PER_EPOCH]
    assert steps and {r["beta"] for r in steps} == {0.25}
    assert TrainConfig.from_dict(load_checkpoint(out / "model.safetensors").train_config).changes == saved.changes


def test_resuming_keeps_a_change_made_as_an_epoch_ended_and_drops_the_pause(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join([
        '{"step": 6, "kind": "epoch", "split": "train", "elbo": -1}',
        '{"step": 6, "kind": "pause", "lr": 0.001, "beta": 1}',
        '{"step": 6, "kind": "change", "lr": 0.01, "beta": 1}',
        '{"step": 7, "kind": "step", "split": "train", "elbo": -1}']) + "\n")
    truncate_metrics(path, 6)  # the resume state is step 6's: saved before the pause and the change
    assert [r["kind"] for r in read_metrics(path)] == ["epoch", "change"]


def test_a_change_made_while_paused_at_an_epochs_end_survives_a_resume(tmp_path, digits, digits_z2):
    out, control, stop = tmp_path / "run", TrainControl(), threading.Event()

    def first(event):
        if event.kind == "epoch" and event.state.epoch == 1:
            control.pause()  # epoch 1 has just ended (its checkpoint written): it pauses before step 7
        elif event.kind == "pause":
            control.change(lr=0.007)  # after the epoch's checkpoint and resume state were written
        elif event.kind == "change":
            stop.set()

    train_run(out, digits, digits_z2, CONFIG, callbacks=[first], control=control, stop_event=stop, kinds=EVENTS)
    assert TrainConfig.from_dict(load_resume_state(out / "resume.safetensors").train_config).changes == ()

    rates, heard = set(), []

    def second(event):
        heard.append(event.kind)
        if event.kind == "step":
            rates.add(event.state.optimizer.param_groups[0]["lr"])

    train_run(out, digits, digits_z2, CONFIG, resume=True, callbacks=[second], kinds=EVENTS)
    assert rates == {0.007} and "change" not in heard  # in force from the first step, made once
    assert [(r["step"], r["lr"]) for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "change"] == [
        (STEPS_PER_EPOCH, 0.007)]
    changes = TrainConfig.from_dict(load_checkpoint(out / "model.safetensors").train_config).changes
    assert changes == (Change(STEPS_PER_EPOCH, lr=0.007, beta=1.0),)


def test_a_pause_nobody_touches_ends_when_its_lease_runs_out(digits, digits_z2):
    control = TrainControl(paused=True, lease_s=0.5)
    run = Watched(Trainer(build_model(digits_z2, 4), digits, CONFIG, control=control))
    result = run.finish()
    assert result.status == "finished" and run.pauses() == [0]


def test_a_pause_that_cancels_a_step_not_yet_taken_is_said_again():
    control, stop, said = TrainControl(paused=True), threading.Event(), []

    def on_pause():
        said.append(time.monotonic())
        if len(said) == 1:
            with control._lock:  # a step and a pause that reach the run together: the step is never taken
                control._steps, control._presses = 0, control._presses + 2
                control._lock.notify_all()
        else:
            stop.set()

    control.wait_turn(0, stop, on_pause=on_pause, on_change=lambda: None)
    assert len(said) == 2  # whoever follows the run hears again that it waits


def test_a_paused_run_writes_its_map_so_each_single_step_shows(tmp_path, digits, digits_z2):
    from vae.snapshots import load_snapshots, snapshot_dir

    out, control = tmp_path / "run", TrainControl(paused=True)
    pauses = []

    def on_event(event):
        if event.kind == "pause":
            pauses.append(event.state.step)
            if len(pauses) < 3:
                control.step()  # from the listener: the trainer waits for the answer after this returns
            else:
                control.resume()

    config = TrainConfig(epochs=1, batch_size=256, log_every=100, seed=4, snapshot_every=0)
    train_run(out, digits, digits_z2, config, callbacks=[on_event], control=control, kinds=EVENTS[1:])
    assert pauses == [0, 1, 2]
    steps = [s.step for s in load_snapshots(snapshot_dir(out / "model.safetensors"))]
    assert steps == [0, 1, 2, STEPS_PER_EPOCH]  # the untrained model, each paused step, the epoch's end
    assert [r["kind"] for r in read_metrics(out / "metrics.jsonl")][:5] == ["pause", "step", "pause", "step", "pause"]
