"""Run folders: a cut-off metrics line is skipped, one writer at a time, rename and delete."""
import json
import os

import pytest

from vae.runs import RunDir, RunError, RunLock, delete_run, open_run_dir, read_metrics, rename_run, validate_run_name


def test_a_metrics_line_cut_off_by_a_crash_is_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1, "elbo": -100}) + "\n" + '{"step": 2, "el')
    assert read_metrics(path) == [{"step": 1, "elbo": -100}]


def test_two_writers_never_share_a_run_folder(tmp_path):
    run = open_run_dir(tmp_path / "r", resume=False)
    lock = RunLock(run)
    lock.acquire()
    with pytest.raises(RunError, match="already being trained"):
        RunLock(run).acquire()
    lock.release()
    RunLock(run).acquire()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    run = open_run_dir(tmp_path / "r", resume=False)
    (run.path / ".lock").write_text("999999999\n")  # no such pid
    lock = RunLock(run)
    lock.acquire()
    assert lock.held and (run.path / ".lock").read_text().strip() == str(os.getpid())


def test_a_live_foreign_lock_is_refused(tmp_path):
    run = open_run_dir(tmp_path / "r", resume=False)
    (run.path / ".lock").write_text("1\n")  # pid 1 is always alive
    with pytest.raises(RunError, match="pid 1"):
        RunLock(run).acquire()


def test_resume_needs_a_resumable_run(tmp_path):
    with pytest.raises(RunError, match="no resumable run"):
        open_run_dir(tmp_path / "new", resume=True)


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_unsafe_run_names_are_refused(name):
    with pytest.raises(RunError):
        validate_run_name(name)


def test_rename_and_delete(tmp_path):
    run = RunDir(tmp_path / "old")
    run.path.mkdir()
    (run.path / "model.safetensors").write_bytes(b"x")
    renamed = rename_run(run, "new")
    assert renamed.checkpoint.exists() and not run.path.exists()
    with pytest.raises(RunError):
        rename_run(renamed, "../evil")
    delete_run(renamed)
    assert not renamed.path.exists()
