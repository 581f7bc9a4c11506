"""The background worker: its work runs in a child process (not the server's), one computation per key shared by
everyone who asks, failures kept until forgotten, a killed process fails what it owed with a sentence and the
next submit starts another, and closing its input stops it even mid-task."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import vae.compare
import vae.derived
from ui.background import BackgroundError, BackgroundWorker, Task
from vae.background_process import task_line
from vae.compare import read_iw_estimate


def iw_task(z2, root, n_points=20, k=5, **extra) -> Task:
    """An IW estimate of the bundled 2-D model (the checkpoint `z2`) into the runs folder `root`."""
    return Task("iw-estimate", {"runs_root": str(root), "checkpoint": str(z2.path), "sha256": z2.sha256,
                                "n_points": n_points, "k": k, **extra})


def slow_task(z2, root) -> Task:
    """Tens of seconds of work even once the process has started: the Estimator lab's largest cell."""
    return Task("estimator-cell", {"runs_root": str(root), "checkpoint": str(z2.path), "sha256": z2.sha256,
                                   "weights": "trained", "batch": 32, "repeats": 200, "n_samples": 100})


@pytest.fixture
def worker():
    w = BackgroundWorker()
    yield w
    w.close()


def test_the_work_is_done_by_a_child_process_which_leaves_it_in_the_runs_folders_cache(worker, tmp_path,
                                                                                     monkeypatch, z2):
    def not_here(*args, **kwargs):
        raise AssertionError("computed in the server's own process")

    monkeypatch.setitem(vae.derived.TASKS, "iw-estimate", not_here)  # were it run in this process, it would fail
    monkeypatch.setattr(vae.compare, "cached_iw_estimate", not_here)
    assert worker.submit(("iw",), iw_task(z2, tmp_path)).result(timeout=120) is True
    assert worker.pid is not None and worker.pid != os.getpid()
    assert b"vae.background_process" in (open(f"/proc/{worker.pid}/cmdline", "rb").read())
    monkeypatch.undo()
    value = read_iw_estimate(tmp_path, z2.sha256, 20, 5)  # the page reads it here, from the cache the child wrote
    assert value is not None and -300 < value["iw_log_likelihood"] < 0


def test_one_key_is_computed_once_for_everyone_and_a_failure_stays_until_forgotten(worker, tmp_path, z2):
    first = worker.submit(("iw",), iw_task(z2, tmp_path))
    assert worker.submit(("iw",), iw_task(z2, tmp_path)) is first  # a second session shares the first's future
    first.result(timeout=120)
    bad = iw_task(z2, tmp_path, sha256="0" * 64)  # the file is not the one the page opened
    failed = worker.submit(("bad",), bad)
    with pytest.raises(BackgroundError, match="has changed since the page opened it"):
        failed.result(timeout=60)
    assert worker.submit(("bad",), bad) is failed  # kept, so the page shows the error instead of looping
    worker.forget(("bad",))
    again = worker.submit(("bad",), bad)
    assert again is not failed  # a retry runs it again
    with pytest.raises(BackgroundError, match="has changed"):
        again.result(timeout=60)
    assert ("iw",) not in worker._futures  # finished work lives in the disk cache, not in the worker


def test_unknown_tasks_and_bad_arguments_are_refused_in_a_sentence_and_the_process_carries_on(worker, tmp_path, z2):
    unknown = worker.submit(("x",), Task("shell", {"command": "rm -rf /"}))
    with pytest.raises(BackgroundError, match="there is no background task named 'shell'"):
        unknown.result(timeout=120)
    wrong = worker.submit(("y",), iw_task(z2, tmp_path, n_points=20, k=5, colour="red"))
    with pytest.raises(BackgroundError, match="colour"):
        wrong.result(timeout=60)
    pid = worker.pid
    assert worker.submit(("z",), iw_task(z2, tmp_path)).result(timeout=60) is True and worker.pid == pid


def test_a_killed_process_fails_its_futures_with_a_sentence_and_the_next_submit_starts_another(worker, tmp_path, z2):
    owed = [worker.submit(("curve",), slow_task(z2, tmp_path)), worker.submit(("iw",), iw_task(z2, tmp_path))]
    dead = worker.pid
    assert not any(f.done() for f in owed)  # the child is still importing torch
    os.kill(dead, signal.SIGKILL)
    for future in owed:
        with pytest.raises(BackgroundError, match="killed by signal 9"):
            future.result(timeout=30)
    assert worker.submit(("curve",), slow_task(z2, tmp_path)) is owed[0]  # the failure is shown, not retried in a loop
    fresh = worker.submit(("iw again",), iw_task(z2, tmp_path))
    assert fresh.result(timeout=120) is True and worker.pid not in (None, dead)


def test_an_upload_reaches_the_process_as_a_private_temporary_file_removed_after_its_tasks(worker, tmp_path, z2):
    args = {"runs_root": str(tmp_path), "checkpoint": None, "sha256": z2.sha256, "weights": "trained", "batch": 4,
            "repeats": 2, "n_samples": 1}
    upload = z2.path.read_bytes()
    futures = [worker.submit(("cell", seed), Task("estimator-cell", {**args, "seed": seed}, upload=upload))
               for seed in (0, 1)]
    copies = list(worker._tmp.iterdir())
    assert len(copies) == 1 and copies[0].stat().st_mode & 0o077 == 0  # one copy for both, this user's only
    assert [f.result(timeout=120) for f in futures] == [True, True]
    assert not copies[0].exists()
    rows = json.loads(next((tmp_path / "cache" / z2.sha256).glob("estimator-cell-*-s1.json")).read_text())
    assert [r["estimator"] for r in rows] == ["A", "B"]


def test_the_end_of_its_input_stops_the_process_even_in_the_middle_of_a_task(tmp_path, z2, repo):
    child = subprocess.Popen([sys.executable, "-m", "vae.background_process"], cwd=repo, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        child.stdin.write(task_line(1, "iw-estimate", iw_task(z2, tmp_path).args))
        child.stdin.flush()
        assert json.loads(child.stdout.readline()) == {"id": 1, "ok": True}  # started, torch imported
        child.stdin.write(task_line(2, "estimator-cell", slow_task(z2, tmp_path).args))
        child.stdin.flush()
        time.sleep(1.0)
        child.stdin.close()  # the server closed it, or died (even killed with -9)
        assert child.wait(timeout=10) == 0
    finally:
        child.kill()
    assert child.stdout.read() == b""  # it answered nothing more: the task was abandoned, not finished
    assert not list((tmp_path / "cache" / z2.sha256).glob("estimator-cell-*"))


def test_closing_the_worker_ends_its_process(tmp_path, z2):
    worker = BackgroundWorker()
    worker.submit(("iw",), iw_task(z2, tmp_path)).result(timeout=120)
    pid = worker.pid
    worker.close()
    assert worker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: gone
    with pytest.raises(BackgroundError, match="shutting down"):
        worker.submit(("later",), iw_task(z2, tmp_path)).result(timeout=5)
