"""The trainer writes nothing; the run writer, its first callback, keeps the run folder."""
import builtins
import json
import os

import pytest

from vae.checkpoint import load_checkpoint, load_resume_state
from vae.config import TrainConfig
from vae.model import build_model
from vae.run_writer import RunWriter
from vae.runs import open_run_dir, read_metrics
from vae.snapshots import load_snapshots, snapshot_dir
from vae.train import EVENTS, Trainer, train_run

CONFIG = TrainConfig(epochs=2, batch_size=256, log_every=2, seed=4)  # digits: 6 steps an epoch, 3 logged


def written_paths(monkeypatch) -> list[str]:
    """Every file opened for writing from now on (builtins.open, and os.open as tempfile.mkstemp uses it)."""
    opened = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            opened.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    def spy_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            opened.append(str(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return opened


def test_a_trainer_without_a_run_writer_writes_no_file(tmp_path, monkeypatch, digits, digits_z2):
    monkeypatch.chdir(tmp_path)
    events = []
    trainer = Trainer(build_model(digits_z2), digits, CONFIG, callbacks=[events.append])
    opened = written_paths(monkeypatch)
    result = trainer.fit()
    assert result.status == "finished" and result.epochs == 2 and result.checkpoint is None
    assert [e.kind for e in events if e.kind == "epoch"] == ["epoch", "epoch"]
    assert opened == [] and list(tmp_path.iterdir()) == []


def test_with_a_run_writer_the_folder_holds_metrics_checkpoint_resume_state_and_snapshots(tmp_path, digits,
                                                                                         digits_z2):
    run = open_run_dir(tmp_path / "run", resume=False)
    trainer = Trainer(build_model(digits_z2), digits, CONFIG)
    RunWriter(run, digits, CONFIG).attach(trainer)
    result = trainer.fit()
    records = read_metrics(run.metrics)
    assert [(r["split"], r["kind"], r["step"]) for r in records] == [
        ("train", "step", 2), ("train", "step", 4), ("train", "step", 6), ("train", "epoch", 6), ("test", "epoch", 6),
        ("train", "step", 8), ("train", "step", 10), ("train", "step", 12), ("train", "epoch", 12),
        ("test", "epoch", 12)]
    assert records == result.history  # the file holds what the trainer reported, every record once
    checkpoint = load_checkpoint(run.checkpoint)
    assert checkpoint.summary["epochs"] == 2 and checkpoint.summary["test_elbo"] == records[-1]["elbo"]
    assert checkpoint.dataset["name"] == "digits" and result.checkpoint == run.checkpoint
    state = load_resume_state(run.resume)
    assert (state.step, state.epoch) == (12, 2) and set(state.generator_states) == {"shuffle", "noise"}
    assert [s.epoch for s in load_snapshots(snapshot_dir(run.checkpoint))] == [0, 1, 2]


def test_events_arrive_in_order_and_each_epochs_checkpoint_is_on_disk_before_later_callbacks_hear_it(
        tmp_path, digits, digits_z2):
    progress = []

    def on_progress(event):
        progress.append(event)
        if event.kind == "epoch":  # train_run's callbacks hear an epoch after the writer has saved it
            assert load_checkpoint(tmp_path / "run").summary["epochs"] == event.state.epoch

    result = train_run(tmp_path / "run", digits, digits_z2, CONFIG, callbacks=[on_progress])
    assert result.status == "finished"  # and they hear the progress events only
    assert [e.kind for e in progress] == ["step"] * 3 + ["epoch"] + ["step"] * 3 + ["epoch", "end"]

    run = open_run_dir(tmp_path / "every-kind", resume=False)
    heard = []

    def listener(event):
        heard.append(event.kind)
        if event.kind == "start":
            assert event.state.epoch == 0 and event.test_inputs.shape == (len(digits.x_test), 8, 8)
            assert (snapshot_dir(run.checkpoint) / "step-000000000.safetensors").exists()  # the untrained model
        if event.kind == "epoch":
            assert load_checkpoint(run.checkpoint).summary["epochs"] == event.state.epoch
            assert load_resume_state(run.resume).epoch == event.state.epoch
            assert read_metrics(run.metrics)[-2:] == event.records
            assert (snapshot_dir(run.checkpoint) / f"step-{event.state.step:09d}.safetensors").exists()

    trainer = Trainer(build_model(digits_z2, CONFIG.seed), digits, CONFIG)
    RunWriter(run, digits, CONFIG).attach(trainer)
    trainer.add_callback(listener, EVENTS)
    trainer.fit()
    assert heard == ["start"] + ["step"] * 3 + ["epoch"] + ["step"] * 3 + ["epoch", "end"]
    with pytest.raises(ValueError, match="not 'resumed'"):
        trainer.add_callback(listener, ("resumed",))


def test_resume_truncates_the_metrics_and_snapshots_written_after_the_resume_state(tmp_path, digits, digits_z2):
    out = tmp_path / "run"
    train_run(out, digits, digits_z2, TrainConfig(epochs=1, batch_size=256, log_every=2, seed=4))
    kept = read_metrics(out / "metrics.jsonl")
    state = load_resume_state(out / "resume.safetensors")
    # A run killed during its second epoch: records past the resume state's step, and a later snapshot.
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": state.step + 2, "split": "train", "kind": "step", "elbo": -1.0}) + "\n")
    (out / "snapshots" / "step-000000008.safetensors").write_bytes((out / "snapshots" / "step-000000006.safetensors")
                                                                   .read_bytes())
    writer = RunWriter(open_run_dir(out, resume=True), digits, CONFIG)
    assert writer.resume(state.step, state.epoch) == kept
    assert read_metrics(out / "metrics.jsonl") == kept
    assert [s.epoch for s in load_snapshots(out / "snapshots")] == [0, 1]
    assert not (out / "snapshots" / "step-000000008.safetensors").exists()

    (out / "snapshots" / "step-000000030.safetensors").write_bytes((out / "snapshots" / "step-000000006.safetensors")
                                                                   .read_bytes())
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 999, "split": "train", "kind": "step", "elbo": -1.0}) + "\n")
    result = train_run(out, digits, digits_z2, CONFIG, resume=True)
    records = read_metrics(out / "metrics.jsonl")
    assert records[:len(kept)] == kept and all(r["step"] != 999 for r in records)
    assert [r["step"] for r in records] == sorted(r["step"] for r in records) and records == result.history
    assert [s.epoch for s in load_snapshots(out / "snapshots")] == [0, 1, 2]
    epochs = [(r["split"], r["step"]) for r in load_checkpoint(out).history if r["kind"] == "epoch"]
    assert epochs == [("train", 6), ("test", 6), ("train", 12), ("test", 12)]  # the chart spans both sessions


def test_the_writer_snapshots_any_events_step_on_request_and_between_epoch_ends_on_its_own(tmp_path, digits,
                                                                                           digits_z2):
    config = TrainConfig(epochs=1, batch_size=64, log_every=5, snapshot_every=10, seed=4)  # 23 steps an epoch
    run = open_run_dir(tmp_path / "run", resume=False)
    trainer = Trainer(build_model(digits_z2, config.seed), digits, config)
    writer = RunWriter(run, digits, config)
    writer.attach(trainer)
    asked = []

    def pause_after(event):  # as a future "paused after one step" event would: the writer snapshots its step
        if event.state.step == 5:
            asked.append(writer.snapshot(event))

    trainer.add_callback(pause_after, ("step",))
    trainer.fit()
    assert [p.name for p in asked] == ["step-000000005.safetensors"]
    snaps = load_snapshots(snapshot_dir(run.checkpoint))
    assert [s.step for s in snaps] == [0, 5, 15, 23]  # 10 steps after the last one (5), then the epoch's end
    assert [round(s.epoch, 4) for s in snaps] == [0, round(5 / 23, 4), round(15 / 23, 4), 1]
    assert snaps[-1].test_elbo == read_metrics(run.metrics)[-1]["elbo"] and snaps[2].test_elbo is None


def test_a_run_stopped_between_epoch_ends_leaves_the_map_of_the_step_it_stopped_on(tmp_path, digits, digits_z2):
    config = TrainConfig(epochs=2, batch_size=64, log_every=5, snapshot_every=0, seed=4)  # 23 steps an epoch
    run = open_run_dir(tmp_path / "run", resume=False)
    trainer = Trainer(build_model(digits_z2, config.seed), digits, config)
    RunWriter(run, digits, config).attach(trainer)

    def stop_at_step_30(event):
        if event.state.step == 30:
            trainer.stop_event.set()

    trainer.add_callback(stop_at_step_30, ("step",))
    result = trainer.fit()
    assert result.status == "stopped" and result.step == 30
    snaps = load_snapshots(snapshot_dir(run.checkpoint))
    assert [s.step for s in snaps] == [0, 23, 30]  # the untrained model, the epoch's end, the stop
    assert round(snaps[-1].epoch, 4) == round(1 + 7 / 23, 4) and snaps[-1].test_elbo is None
