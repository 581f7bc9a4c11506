"""Checkpoints: round trip, atomic writes, and every broken or hostile file refused with one sentence."""
import errno
import os

import pytest
import torch

from tests import broken_files as bf
from vae.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vae.storage import atomic_write_bytes


def test_round_trip_rebuilds_the_same_model_and_metadata(tmp_path):
    model = bf.tiny_model()
    history = [{"step": 1, "epoch": 1.0, "split": "test", "elbo": -50.0, "recon": -45.0, "kl": 5.0, "seconds": 0.1}]
    path = save_checkpoint(tmp_path / "m.safetensors", model, train_config={"lr": 0.001},
                           dataset={"name": "digits", "image_shape": [8, 8]}, history=history,
                           summary={"test_elbo": -50.0})
    ck = load_checkpoint(path)
    assert ck.model_config == model.config
    assert ck.history == history and ck.train_config == {"lr": 0.001} and ck.dataset["name"] == "digits"
    x = torch.rand(4, 8, 8)
    torch.testing.assert_close(ck.model(x), model.eval()(x))
    assert len(ck.sha256) == 64 and ck.path == path


def test_loading_a_run_folder_finds_its_checkpoint(tmp_path):
    bf.valid(tmp_path, "model.safetensors")
    assert load_checkpoint(tmp_path).model_config.latent_dim == 2


@pytest.mark.parametrize("case", sorted(bf.BROKEN))
def test_broken_files_are_refused_with_one_sentence(tmp_path, case):
    make, pattern = bf.BROKEN[case]
    path = make(tmp_path)
    with pytest.raises(CheckpointError, match=pattern) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and message.endswith(".") and len(message) < 300


@pytest.mark.parametrize("make", [bf.raw_pickle, bf.torch_pickle])
def test_a_pickle_is_refused_and_its_payload_never_runs(tmp_path, make):
    marker = tmp_path / "pwned"
    path = make(tmp_path, marker)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_the_marker_payload_really_would_run(tmp_path):
    # Guards the test above: unpickling the same file does create the marker.
    import pickle
    marker = tmp_path / "pwned"
    pickle.loads(bf.raw_pickle(tmp_path, marker).read_bytes())
    assert marker.exists()


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    import vae.checkpoint as ckpt
    path = bf.valid(tmp_path)
    monkeypatch.setattr(ckpt, "MAX_FILE_BYTES", 1000)
    with pytest.raises(CheckpointError, match="limit"):
        load_checkpoint(path)


def test_atomic_write_leaves_the_old_file_when_the_disk_is_full(tmp_path, monkeypatch):
    path = bf.valid(tmp_path, "model.safetensors")
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_checkpoint_files_are_readable_by_others(tmp_path):
    assert oct(bf.valid(tmp_path).stat().st_mode & 0o777) == "0o644"


def test_non_finite_weights_are_refused(tmp_path):
    model = bf.tiny_model()
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")
    path = save_checkpoint(tmp_path / "nan.safetensors", model)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(path)
