"""Frey Face (vae/data/frey.py): 1,965 upright 28x20 faces in the video's order, a fixed split of held-out
blocks, found where DESIGN.md says, and every damaged file refused with one sentence."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from vae.checkpoint import load_checkpoint
from vae.data import DataError, Dataset, available_datasets, builtin, load_dataset
from vae.data.frey import BLOCK, FREY_FILE, frey_split, read_frey
from vae.export import coordinates_csv

TEST_BLOCKS = [1, 3, 7, 17, 24, 28, 46, 57, 75, 79]  # the held-out blocks of 20 frames: a checkpoint's test set


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    """Each test parses afresh into its own cache, and no $VAE_DATA_DIR finds the set unless the test sets it."""
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VAE_DATA_DIR", raising=False)
    builtin._load_builtin.cache_clear()
    yield
    builtin._load_builtin.cache_clear()


@pytest.fixture
def frey(frey_dir):
    return load_dataset("frey", data_dir=frey_dir)


@pytest.fixture
def raw_ff(frey_dir) -> np.ndarray:
    """The file's own variable, read by scipy alone: [560, 1965] uint8, one image per column."""
    return scipy.io.loadmat(frey_dir / FREY_FILE)["ff"]


def one_sentence(err: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(err.value)
    assert "\n" not in message and message.endswith(".") and message.count(". ") == 0, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# -- shape, orientation, range -------------------------------------------------------------------------------
def test_all_1965_frames_are_28_high_and_20_wide_in_0_1(frey):
    assert frey.name == "frey" and frey.image_shape == (28, 20)
    assert len(frey.x_train) + len(frey.x_test) == 1965
    assert frey.x_train.shape[1:] == frey.x_test.shape[1:] == (28, 20) and frey.x_train.dtype == np.float32
    both = np.concatenate([frey.x_train, frey.x_test])
    assert 0.0 <= both.min() and both.max() <= 1.0
    np.testing.assert_array_equal(np.rint(both * 255) / np.float32(255), both)  # uint8 / 255, nothing else
    assert abs(both.mean() - 0.606) < 0.001  # the data README: mean grey level 154.5 of 255
    assert frey.y_train is None and frey.y_test is None and frey.class_names is None  # no labels
    info = frey.info()
    json.dumps(info)  # stored in checkpoints
    assert info["image_shape"] == [28, 20] and info["n_train"] == 1765 and info["n_test"] == 200


def test_each_image_is_its_column_of_ff_read_row_major(frey, raw_ff):
    for x, frames in ((frey.x_train, frey.frame_train), (frey.x_test, frey.frame_test)):
        for row in (0, 1, len(x) // 2, len(x) - 1):
            column = raw_ff[:, frames[row]]
            np.testing.assert_array_equal(x[row], column.reshape(28, 20) / np.float32(255))
    # Read column-major instead, the first image would differ: row-major is a real choice.
    assert not np.array_equal(frey.x_train[0], raw_ff[:, 0].reshape(28, 20, order="F") / np.float32(255))


def test_the_face_is_upright_its_dark_eyes_above_its_mouth(frey):
    rows = np.concatenate([frey.x_train, frey.x_test]).mean(axis=(0, 2))  # the mean face's brightness by row
    eyes, mouth = int(np.argmin(rows[:14])), 14 + int(np.argmin(rows[14:]))
    assert 4 <= eyes <= 9 and rows[eyes] < rows[mouth], rows  # upside down, the darkest band would be below
    assert rows[:3].mean() > rows[eyes] + 0.2  # a bright forehead above the eyes


# -- the split -----------------------------------------------------------------------------------------------
def test_the_split_holds_out_ten_fixed_blocks_of_twenty_consecutive_frames():
    train, test = frey_split()
    assert sorted(set(test // BLOCK)) == TEST_BLOCKS  # the same on every machine and every load
    np.testing.assert_array_equal(test, (np.array(TEST_BLOCKS)[:, None] * BLOCK + np.arange(BLOCK)).ravel())
    assert len(test) == 200 and len(train) == 1765
    assert not set(train) & set(test) and sorted(set(train) | set(test)) == list(range(1965))
    assert (np.diff(train) > 0).all() and (np.diff(test) > 0).all()  # in the video's order
    np.testing.assert_array_equal(frey_split()[1], test)


def test_images_keep_their_frame_index_read_only(frey):
    train, test = frey_split()
    np.testing.assert_array_equal(frey.frame_train, train)
    np.testing.assert_array_equal(frey.frame_test, test)
    assert frey.frame_test.dtype == np.int64
    with pytest.raises(ValueError):
        frey.frame_test[0] = 0


def test_frame_indices_must_match_the_images():
    x = np.zeros((3, 2, 2), np.float32)
    with pytest.raises(ValueError, match="frame_train has 2 entries for 3 images"):
        Dataset("video", x, None, x[:1], None, None, "here", frame_train=np.arange(2), frame_test=np.arange(1))


def test_the_coordinates_csv_gains_a_frame_column_for_frames_only():
    def csv(**frames):
        return coordinates_csv(np.array([1, 0]), np.zeros((2, 2)), np.zeros((2, 3)), None, str, **frames).decode()
    framed = csv(frames=np.array([20, 21])).splitlines()
    assert framed[0] == "index,label,class,frame,x,y,mu_0,mu_1,mu_2" and framed[1].startswith("1,,,21,")
    assert csv().splitlines()[0] == "index,label,class,x,y,mu_0,mu_1,mu_2"  # unchanged for every other set


def test_a_second_load_reads_the_cache_frames_and_all(frey, frey_dir, monkeypatch):
    builtin._load_builtin.cache_clear()
    monkeypatch.setattr(builtin, "_parse_builtin", lambda *a: pytest.fail("parsed again despite the cache"))
    again = load_dataset("frey", data_dir=frey_dir)
    assert again is not frey and again.notes == frey.notes and again.source == frey.source
    for field in ("x_train", "x_test", "frame_train", "frame_test"):
        np.testing.assert_array_equal(getattr(again, field), getattr(frey, field))
    assert again.y_test is None and again.class_names is None


# -- where it is found -----------------------------------------------------------------------------------------
def test_found_in_data_dir_first_then_vae_data_dir(frey_dir, tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    (root / "frey").symlink_to(frey_dir)
    monkeypatch.setenv("VAE_DATA_DIR", str(root))
    assert load_dataset("frey").source == str((frey_dir / FREY_FILE).resolve())
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_dataset("frey", data_dir=empty).x_test.shape == (200, 28, 20)  # not in DIR: $VAE_DATA_DIR's
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / FREY_FILE).write_bytes(b"not a MATLAB file" * 20)
    with pytest.raises(DataError, match="not a MATLAB v5 file"):  # first match wins, even when it is broken
        load_dataset("frey", data_dir=broken)
    rows = {r["name"]: r for r in available_datasets(empty)}
    assert rows["frey"]["available"] and rows["frey"]["where"].endswith(FREY_FILE)


def test_missing_says_where_it_looked_and_how_to_give_it(tmp_path, monkeypatch):
    with pytest.raises(DataError) as err:
        load_dataset("frey")
    one_sentence(err, FREY_FILE, "no --data-dir was given", "--data-dir DIR", "VAE_DATA_DIR")
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "root"))
    with pytest.raises(DataError) as err:
        load_dataset("frey", data_dir=tmp_path / "mine")
    one_sentence(err, str(tmp_path / "mine"), str(tmp_path / "root" / "frey"), "frey/ sub-folder")
    row = {r["name"]: r for r in available_datasets(tmp_path / "mine")}["frey"]
    assert not row["available"] and str(tmp_path / "mine") in row["where"]


# -- refused with one sentence -------------------------------------------------------------------------------
def write(tmp_path, content) -> object:
    path = tmp_path / FREY_FILE
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        scipy.io.savemat(path, content)
    return path


@pytest.mark.parametrize("keep", [0, 100, 200, 600_000, 1_100_583])
def test_a_truncated_file_is_refused(frey_dir, tmp_path, keep):
    path = write(tmp_path, (frey_dir / FREY_FILE).read_bytes()[:keep])
    with pytest.raises(DataError) as err:
        read_frey(path)
    one_sentence(err, path.name, str(tmp_path))


def test_a_file_that_is_not_matlab_is_refused(tmp_path):
    with pytest.raises(DataError) as err:
        read_frey(write(tmp_path, b"\x89PNG\r\n\x1a\n" + bytes(300)))
    one_sentence(err, "is not a MATLAB v5 file")


def test_a_mat_file_without_ff_is_refused(tmp_path):
    with pytest.raises(DataError) as err:
        read_frey(write(tmp_path, {"faces": np.zeros((560, 1965), np.uint8)}))
    one_sentence(err, "no variable 'ff'", "it holds: faces")


@pytest.mark.parametrize("ff, says", [(np.zeros((560, 100), np.uint8), "uint8 560 x 100"),
                                      (np.zeros((1965, 560), np.uint8), "uint8 1965 x 560"),
                                      (np.zeros((560, 1965)), "double 560 x 1965"),
                                      ({"a": 1}, "struct 1 x 1")])
def test_ff_of_the_wrong_shape_or_type_is_refused(tmp_path, ff, says):
    with pytest.raises(DataError) as err:
        read_frey(write(tmp_path, {"ff": ff}))
    one_sentence(err, says, "not Frey Face's uint8 560 x 1965")


def test_a_compressed_file_with_ff_among_other_variables_reads_the_same(frey_dir, tmp_path, raw_ff):
    path = write(tmp_path, b"")
    scipy.io.savemat(path, {"note": np.ones(3), "ff": raw_ff}, do_compression=True)  # MATLAB -v7's default
    np.testing.assert_array_equal(read_frey(path), read_frey(frey_dir / FREY_FILE))


def test_a_file_far_too_large_is_refused_unread(tmp_path):
    path = tmp_path / FREY_FILE
    with open(path, "wb") as f:
        f.truncate(40 * 2**20)  # sparse: no 40 MB written
    with pytest.raises(DataError) as err:
        read_frey(path)
    one_sentence(err, "40 MB", "not that file")


@pytest.mark.slow
def test_damaged_tags_are_refused_never_a_crash(frey_dir, tmp_path):
    """scipy's compiled reader segfaults on some damaged type codes (one was found this way): every damaged
    header must end in a DataError or a good read. Run in a child process, so a crash fails the test, not
    the test run."""
    script = f"""
import numpy as np
from pathlib import Path
from vae.data import DataError
from vae.data.frey import read_frey
raw, path = Path({str(frey_dir / FREY_FILE)!r}).read_bytes(), Path({str(tmp_path / "damaged.mat")!r})
rng = np.random.default_rng(7)
for _ in range(600):
    b = bytearray(raw)
    for j in rng.integers(120, 200, rng.integers(1, 3)):
        b[j] = rng.integers(0, 256)
    path.write_bytes(bytes(b))
    try:
        read_frey(path)
    except DataError:
        pass
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]


# -- the command line ----------------------------------------------------------------------------------------
def test_datasets_lists_frey(frey_dir, vae_cli):
    proc = vae_cli("datasets", "--data-dir", frey_dir, "--json")
    row = {r["name"]: r for r in json.loads(proc.stdout)}["frey"]
    assert row["available"] and "28x20" in row["description"]


@pytest.mark.slow
def test_train_on_frey_with_the_gaussian_decoder_ends_with_its_json_line(frey_dir, tmp_path, vae_cli):
    proc = vae_cli("train", "--dataset", "frey", "--data-dir", frey_dir, "--likelihood", "gaussian", "--epochs", "1",
                   "--hidden", "32", "--latent-dim", "2", "--out", tmp_path / "f", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert np.isfinite(summary["test_elbo"]) and summary["epochs"] == 1
    assert "no official split" in proc.stderr  # the split is told, as a note
    ck = load_checkpoint(tmp_path / "f" / "model.safetensors")
    assert ck.model_config.image_shape == (28, 20) and ck.dataset["name"] == "frey"
