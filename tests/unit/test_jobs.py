"""Background training jobs: they train in a process of their own, queue beyond the limit, obey their owner, and end
in a readable state however their process ends."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from vae.config import ModelSettings, TrainConfig
from vae.job_spec import JobSpec
from vae.jobs import JobRegistry
from vae.runs import RunError


def spec(name, epochs=2, resume=False, **kw):
    return JobSpec(run_name=name, dataset="digits", model=ModelSettings(latent_dim=2, hidden=(32,)),
                   train=TrainConfig(epochs=epochs, **kw), resume=resume)


def test_a_job_runs_to_the_end_and_reports_its_progress_and_history(tmp_path):
    reg = JobRegistry(tmp_path, max_running=1)
    job = reg.submit(spec("a"), owner="s1")
    done = reg.wait(job.id, timeout=120)
    assert done.state == "finished" and done.progress == 1.0 and done.samples_per_s > 0
    assert [r["split"] for r in done.history if r["kind"] == "epoch"] == ["train", "test"] * 2
    assert (tmp_path / "a" / "model.safetensors").exists()


def test_jobs_beyond_the_limit_wait_in_a_queue_that_shows_their_place(tmp_path):
    reg = JobRegistry(tmp_path, max_running=1)
    first = reg.submit(spec("first", epochs=30), owner="s1")
    second = reg.submit(spec("second"), owner="s2")
    third = reg.submit(spec("third"), owner="s2")
    assert (reg.get(second.id).state, reg.get(second.id).queue_position) == ("queued", 1)
    assert reg.get(third.id).queue_position == 2
    reg.stop(first.id, "s1")
    assert reg.wait(first.id, 60).state == "stopped"
    assert reg.wait(second.id, 120).state == "finished"
    assert reg.wait(third.id, 120).state == "finished"


def test_only_the_owner_can_stop_a_job(tmp_path):
    reg = JobRegistry(tmp_path)
    job = reg.submit(spec("mine", epochs=50), owner="alice")
    with pytest.raises(PermissionError):
        reg.stop(job.id, "bob")
    reg.stop(job.id, "alice")
    assert reg.wait(job.id, 60).state == "stopped"


def test_a_name_in_use_is_refused_at_once(tmp_path):
    reg = JobRegistry(tmp_path)
    job = reg.submit(spec("same", epochs=50), owner="a")
    with pytest.raises(RunError, match="already"):
        reg.submit(spec("same"), owner="b")
    reg.stop(job.id, "a")
    reg.wait(job.id, 60)
    reg.wait(reg.submit(spec("done", epochs=1), owner="a").id, 120)
    with pytest.raises(RunError, match="--resume"):  # a finished run's folder is not overwritten
        reg.submit(spec("done"), owner="b")
    resumed = reg.submit(spec("done", epochs=500, resume=True), owner="b")  # ... but a resume is fine
    with pytest.raises(RunError, match="already"):
        reg.submit(spec("done", epochs=3, resume=True), owner="c")
    reg.stop(resumed.id, "b")
    reg.wait(resumed.id, 60)


def test_a_bad_job_fails_with_a_sentence_and_frees_the_slot(tmp_path):
    reg = JobRegistry(tmp_path)
    bad = reg.submit(JobSpec(run_name="bad", dataset=str(tmp_path / "missing.npz"), model=ModelSettings(),
                             train=TrainConfig(epochs=1)), owner="a")
    failed = reg.wait(bad.id, 60)
    assert failed.state == "failed" and "missing.npz" in failed.message
    assert reg.wait(reg.submit(spec("good", epochs=1), owner="a").id, 120).state == "finished"


def test_a_diverging_job_says_so(tmp_path):
    reg = JobRegistry(tmp_path)
    job = reg.wait(reg.submit(spec("boom", epochs=3, lr=1e5), owner="a").id, 120)
    assert job.state == "diverged" and "non-finite" in job.message


def test_a_job_trains_in_its_own_process_and_a_registry_thread_follows_it(tmp_path):
    seen = []
    reg = JobRegistry(tmp_path)
    original = reg._on_event

    def spy(job, *message):
        seen.append(threading.current_thread().name)
        original(job, *message)

    reg._on_event = spy
    done = reg.wait(reg.submit(spec("t", epochs=1), owner="a").id, 120)
    assert done.state == "finished" and done.pid not in (None, os.getpid())
    assert seen and all(name.startswith("vae-job-") for name in seen)


def test_a_training_process_that_dies_fails_its_job_with_a_sentence(tmp_path):
    reg = JobRegistry(tmp_path)
    job = reg.submit(spec("killed", epochs=500), owner="a")
    deadline = time.monotonic() + 60
    while not reg.get(job.id).history and time.monotonic() < deadline:  # it has started training
        time.sleep(0.1)
    os.kill(reg.get(job.id).pid, signal.SIGKILL)
    failed = reg.wait(job.id, 30)
    assert failed.state == "failed" and "was killed by signal 9" in failed.message
    assert reg.wait(reg.submit(spec("next", epochs=1), owner="a").id, 120).state == "finished"  # the slot is free


ORPHAN = """
import sys, time
from vae.config import ModelSettings, TrainConfig
from vae.job_spec import JobSpec
from vae.jobs import JobRegistry
reg = JobRegistry(sys.argv[1])
job = reg.submit(JobSpec(run_name="orphan", dataset="digits", model=ModelSettings(latent_dim=2, hidden=(32,)),
                         train=TrainConfig(epochs=500)), owner="a")
while not any(r["kind"] == "epoch" for r in reg.get(job.id).history):  # a checkpoint exists
    time.sleep(0.1)
print(reg.get(job.id).pid, flush=True)
"""


def test_a_training_process_stops_by_itself_when_the_server_is_killed(tmp_path, repo):
    server = subprocess.Popen([sys.executable, "-c", ORPHAN, str(tmp_path)], cwd=repo, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(repo)})
    child = int(server.stdout.readline())
    server.kill()  # as kill -9 would: no atexit, no chance to stop its children
    server.wait(10)
    deadline = time.monotonic() + 60
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child), "the orphaned training process kept running"
    assert (tmp_path / "orphan" / "model.safetensors").exists()  # it stopped as Stop does: the last epoch kept


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_a_training_process_that_cannot_start_fails_its_job_and_frees_the_slot(tmp_path, monkeypatch):
    import vae.jobs

    def no_processes(*_, **__):  # as when memory or the process limit runs out
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(vae.jobs.subprocess, "Popen", no_processes)
    reg = JobRegistry(tmp_path)
    failed = reg.wait(reg.submit(spec("nomem", epochs=1), owner="a").id, 30)
    assert failed.state == "failed" and failed.message.startswith("the training process could not start")
    assert "Cannot allocate memory" in failed.message
    monkeypatch.undo()
    assert reg.wait(reg.submit(spec("after", epochs=1), owner="a").id, 120).state == "finished"


def test_the_lines_between_server_and_child_are_json_numbers_and_strings():
    from vae.job_process import death_sentence, job_line
    line = json.loads(job_line(spec("x", epochs=3), "/runs/x", 1))
    assert line["out"] == "/runs/x" and line["train"]["epochs"] == 3 and line["model"]["hidden"] == [32]
    assert line["train"]["changes"] == []  # what the controls did: nothing yet
    assert death_sentence(-9).startswith("the training process was killed by signal 9 (the system does this when")
    assert "exit code 1" in death_sentence(1)


# -- one queue for every server process on a runs folder (the replicas of `python -m vae serve`) --------
HOLDER = """
import sys
from vae.job_queue import SharedQueue
queue = SharedQueue(sys.argv[1], max_running=1)
entry = queue.enter({"run": "theirs", "epochs": 5, "server": "other"})
if sys.argv[2] == "slot":
    assert queue.take_slot(entry, {"run": "theirs", "epochs": 5, "server": "other"}) is not None
print("held", flush=True)
sys.stdin.read()  # holds its files until killed
"""


def _holder(repo, tmp_path, what):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), what], cwd=repo, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(repo)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_slot_held_by_another_process_is_taken_when_that_process_dies(tmp_path, repo):
    from vae.job_queue import SharedQueue
    other = _holder(repo, tmp_path, "slot")
    queue = SharedQueue(tmp_path, max_running=1)
    assert [(j.run_name, j.state) for j in queue.jobs()] == [("theirs", "running")]
    mine = queue.enter({"run": "mine", "epochs": 1})
    assert queue.place(mine) == 1 and queue.take_slot(mine, {"run": "mine"}) is None  # first in line, no slot
    other.kill()  # as kill -9 would: the kernel releases its lock, nobody cleans up
    other.wait(10)
    slot = queue.take_slot(mine, {"run": "mine", "epochs": 1})
    assert slot is not None and [(j.run_name, j.state) for j in queue.jobs()] == [("mine", "running")]
    queue.release(slot)
    assert queue.jobs() == []


def test_queue_places_follow_submission_across_processes_and_a_dead_process_leaves_the_queue(tmp_path, repo):
    from vae.job_queue import SharedQueue
    queue = SharedQueue(tmp_path, max_running=1)
    running = queue.take_slot(queue.enter({"run": "running"}), {"run": "running"})
    other = _holder(repo, tmp_path, "queue")  # submitted first: place 1
    mine = queue.enter({"run": "mine", "epochs": 3})
    assert queue.place(mine) == 2
    assert [(j.run_name, j.state, j.place) for j in queue.jobs()] == [
        ("running", "running", 0), ("theirs", "queued", 1), ("mine", "queued", 2)]
    queue.release(running)
    assert queue.take_slot(mine, {"run": "mine"}) is None  # a free slot, but "theirs" is first in line
    other.kill()
    other.wait(10)
    assert queue.place(mine) == 1 and len(list((tmp_path / ".jobs" / "queue").iterdir())) == 1  # its entry is gone
    assert queue.take_slot(mine, {"run": "mine"}) is not None


SECOND_SERVER = """
import sys, time
from vae.config import ModelSettings, TrainConfig
from vae.job_spec import JobSpec
from vae.jobs import JobRegistry
reg = JobRegistry(sys.argv[1], max_running=1)
job = reg.submit(JobSpec(run_name="elsewhere", dataset="digits", model=ModelSettings(latent_dim=2, hidden=(32,)),
                         train=TrainConfig(epochs=500)), owner="a")
print(reg.get(job.id).state, flush=True)
sys.stdin.readline()
reg.stop(job.id, "a")
print(reg.wait(job.id, 60).state, flush=True)
"""


@pytest.mark.slow
def test_the_job_limit_holds_across_server_processes_on_one_runs_folder(tmp_path, repo):
    server = subprocess.Popen([sys.executable, "-c", SECOND_SERVER, str(tmp_path)], cwd=repo, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        assert server.stdout.readline().strip() == "running"
        reg = JobRegistry(tmp_path, max_running=1)
        assert [(j.run_name, j.state) for j in reg.elsewhere()] == [("elsewhere", "running")]
        with pytest.raises(RunError, match="already queued or training"):  # the name is taken in the other server
            reg.submit(spec("elsewhere"), owner="b")
        job = reg.submit(spec("here", epochs=1), owner="b")
        time.sleep(1.5)  # several polls: it must still wait for the other server's job
        assert (reg.get(job.id).state, reg.get(job.id).queue_position) == ("queued", 1)
        assert [(j.run_name, j.state) for j in reg.elsewhere()] == [("elsewhere", "running")]  # not our own
        server.stdin.write("stop\n")
        server.stdin.flush()
        assert server.stdout.readline().strip() == "stopped"
        assert reg.wait(job.id, 120).state == "finished"
    finally:
        server.kill()
        server.wait(10)


def test_a_job_whose_queue_entry_is_deleted_fails_and_does_not_hold_up_the_queue(tmp_path, repo):
    """The runs folder tidied by hand while a job waits: it ends with a sentence instead of waiting at
    'place 0' for ever, and the next job behind it is not held up by a place it kept."""
    import shutil
    other = _holder(repo, tmp_path, "slot")  # another server's job runs in the only slot
    try:
        reg = JobRegistry(tmp_path, max_running=1)
        waiting = reg.submit(spec("waiting"), owner="a")
        assert reg.get(waiting.id).state == "queued"
        shutil.rmtree(tmp_path / ".jobs" / "queue")
        ended = reg.wait(waiting.id, 30)
        assert ended.state == "failed" and "queue" in ended.message and ended.message.endswith(".")
        assert reg._entries == {}  # its descriptor was closed: nothing of it is left locked
    finally:
        other.kill()
        other.wait(10)
    again = reg.submit(spec("waiting"), owner="a")  # the same name can be queued again and now runs
    assert reg.wait(again.id, 120).state == "finished"


def _until(reg, job_id, test, what: str, timeout: float = 60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = reg.get(job_id)
        if test(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s; the job: {reg.get(job_id)}")


def test_the_owner_pauses_steps_changes_and_resumes_a_job_that_keeps_its_slot(tmp_path):
    reg = JobRegistry(tmp_path, max_running=1)
    job = reg.submit(spec("lab", epochs=200, batch_size=256), owner="teacher")  # digits: 6 steps an epoch
    waiting = reg.submit(spec("next"), owner="student")
    _until(reg, job.id, lambda j: j.state == "running" and j.history, "no record")
    reg.control(job.id, "teacher", "pause")
    paused = _until(reg, job.id, lambda j: j.paused, "no pause")
    assert paused.state == "running" and reg.get(waiting.id).state == "queued"  # the slot is held
    at = paused.history[-1]["step"]

    reg.control(job.id, "teacher", "step")
    stepped = _until(reg, job.id, lambda j: j.paused and j.history[-1]["step"] == at + 1, "no single step")
    assert [r["kind"] for r in stepped.history[-2:]] == ["step", "pause"]

    with pytest.raises(PermissionError):
        reg.control(job.id, "student", "resume")
    with pytest.raises(RunError, match="positive"):
        reg.control(job.id, "teacher", "change", lr=-0.1)
    reg.control(job.id, "teacher", "change", lr=0.0005, beta=0.5)
    changed = _until(reg, job.id, lambda j: j.history[-1]["kind"] == "change", "no change")
    assert changed.in_force == (0.0005, 0.5) and changed.history[-1]["step"] == at + 1 and changed.paused

    reg.control(job.id, "teacher", "epoch")  # to the end of the epoch in progress, then paused again
    _until(reg, job.id, lambda j: j.paused and j.history[-1]["kind"] == "pause" and j.history[-1]["step"] % 6 == 0
           and j.history[-1]["step"] > at + 1, "no pause at the epoch's end")
    reg.control(job.id, "teacher", "resume")
    _until(reg, job.id, lambda j: not j.paused and j.history[-1]["kind"] != "pause", "no resumed step")
    reg.stop(job.id, "teacher")
    assert reg.wait(job.id, 60).state == "stopped"
    records = [json.loads(line) for line in (tmp_path / "lab" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["lr"], r["beta"]) for r in records if r["kind"] == "change"] == [(at + 1, 0.0005, 0.5)]
    assert reg.wait(waiting.id, 120).state == "finished"  # the queue moves on once the paused run ends
    with pytest.raises(RunError, match="not training"):
        reg.control(job.id, "teacher", "pause")


def test_a_control_line_is_read_as_numbers_and_a_bad_one_changes_nothing(capsys):
    from vae.control import TrainControl
    from vae.job_process import control_line, obey

    control, stop = TrainControl(), threading.Event()
    for line in ("change {not json", 'change {"lr": "__import__(\'os\')"}', 'change {"lr": -1}', "change [1, 2]",
                 "rm -rf /", ""):
        obey(line, control, stop)
    assert control.take_change() == {} and not stop.is_set() and not control.paused_now()
    assert capsys.readouterr().err.count("\n") == 5  # each said in one line (the empty line is ignored too)
    obey(control_line("pause").decode(), control, stop)
    assert control.paused_now()
    obey(control_line("change", lr=0.01).decode(), control, stop)
    assert control.take_change() == {"lr": 0.01}
    obey("stop\n", control, stop)
    assert stop.is_set()
    with pytest.raises(ValueError, match="not 'exec'"):
        control_line("exec")


def test_the_time_left_leaves_out_the_time_a_job_was_paused():
    from vae.jobs import Job

    job = Job(id=1, spec=spec("eta"), owner="a", out=None, state="running", progress=0.5,
              started=time.time() - 100, paused_seconds=60)
    assert 39 < job.eta_seconds < 41  # 40 s of training for half the run: 40 s more, not 100
