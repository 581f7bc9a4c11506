"""Background training jobs: they run off the caller's thread, queue beyond the limit, and obey their owner."""
import threading

import pytest

from vae.jobs import JobRegistry, JobSpec
from vae.runs import RunError
from vae.train import TrainConfig


def spec(name, epochs=2, resume=False, **kw):
    return JobSpec(run_name=name, dataset="digits", model={"latent_dim": 2, "hidden": (32,)},
                   train=TrainConfig(epochs=epochs, **kw), resume=resume)


def test_a_job_trains_in_a_background_thread_and_reports_progress(tmp_path):
    reg = JobRegistry(tmp_path, max_running=1)
    job = reg.submit(spec("a"), owner="s1")
    done = reg.wait(job.id, timeout=120)
    assert done.state == "finished" and done.progress == 1.0 and done.samples_per_s > 0
    assert [r["split"] for r in done.history if r["kind"] == "epoch"] == ["train", "test"] * 2
    assert set(done.preview) == {"inputs", "reconstructions", "samples"} and done.preview["samples"].shape == (8, 8, 8)
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
    bad = reg.submit(JobSpec(run_name="bad", dataset=str(tmp_path / "missing.npz"), model={},
                             train=TrainConfig(epochs=1)), owner="a")
    failed = reg.wait(bad.id, 60)
    assert failed.state == "failed" and "missing.npz" in failed.message
    assert reg.wait(reg.submit(spec("good", epochs=1), owner="a").id, 120).state == "finished"


def test_a_diverging_job_says_so(tmp_path):
    reg = JobRegistry(tmp_path)
    job = reg.wait(reg.submit(spec("boom", epochs=3, lr=1e5), owner="a").id, 120)
    assert job.state == "diverged" and "non-finite" in job.message


def test_the_worker_never_runs_on_the_callers_thread(tmp_path):
    seen = []
    reg = JobRegistry(tmp_path)
    original = reg._on_event

    def spy(job, event, inputs):
        seen.append(threading.current_thread().name)
        original(job, event, inputs)

    reg._on_event = spy
    reg.wait(reg.submit(spec("t", epochs=1), owner="a").id, 120)
    assert seen and all(name.startswith("vae-job-") for name in seen)
