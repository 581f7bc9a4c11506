"""Training faults: kill -9 at any moment, a full disk, and what is left on disk afterwards."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vae.checkpoint import load_checkpoint, load_resume_state
from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.runs import read_metrics
from vae.train import train_run


def start_training(repo, out, epochs=40):
    return subprocess.Popen([sys.executable, "-m", "vae", "train", "--dataset", "digits", "--hidden", "64",
                             "--latent-dim", "2", "--epochs", str(epochs), "--out", str(out), "--threads", "1",
                             "--log-every", "2"],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 1.5, 2.5, 3.5])
def test_kill_9_during_training_leaves_a_loadable_checkpoint_and_a_resumable_run(tmp_path, delay, repo, vae_cli):
    out = tmp_path / "run"
    proc = start_training(repo, out)
    deadline = time.time() + 60
    while not (out / "model.safetensors").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(delay)  # somewhere inside a later epoch, perhaps inside a checkpoint write
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    ck = load_checkpoint(out)  # complete and valid, whatever moment the kill hit
    state = load_resume_state(out / "resume.safetensors")
    assert ck.summary["epochs"] >= 1 and state.epoch >= 1
    read_metrics(out / "metrics.jsonl")  # a cut last line is tolerated
    done = vae_cli("train", "--out", out, "--epochs", state.epoch + 1, "--resume", "--threads", "1",
                   "--dataset", "digits", timeout=120)
    assert done.returncode == 0, done.stderr  # the dead process's lock was taken over
    assert json.loads(done.stdout.splitlines()[-1])["epochs"] == state.epoch + 1
    assert not list(out.glob(".*.tmp"))  # a temp file cut off by the kill is cleared on resume


def test_a_full_disk_stops_training_with_an_error_and_leaves_no_half_file(tmp_path, monkeypatch):
    digits = load_dataset("digits")
    mc = ModelConfig(image_shape=(8, 8), latent_dim=2, hidden=(32,))
    train_run(tmp_path / "r", digits, mc, TrainConfig(epochs=1))
    before = (tmp_path / "r" / "model.safetensors").read_bytes()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as err:
        train_run(tmp_path / "r", digits, mc, TrainConfig(epochs=2), resume=True)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert err.value.errno == errno.ENOSPC
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == before
    assert not list((tmp_path / "r").glob(".*.tmp")) and not (tmp_path / "r" / ".lock").exists()


def test_the_cli_reports_a_full_disk_in_one_line(tmp_path, repo):
    # sitecustomize-free injection: a tiny wrapper that makes fsync fail, then runs the CLI.
    script = ("import errno, os, sys, runpy\n"
              "def full(fd): raise OSError(errno.ENOSPC, 'No space left on device')\n"
              "os.fsync = full\n"
              "sys.argv = ['vae'] + sys.argv[1:]\n"
              "runpy.run_module('vae', run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", script, "train", "--dataset", "digits", "--epochs", "1",
                           "--hidden", "16", "--out", str(tmp_path / "r")],
                          cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "r").glob(".*.tmp"))
