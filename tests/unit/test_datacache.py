"""Built-in data sets are parsed once and read back from the binary cache, exactly as parsed."""
import numpy as np
import pytest

from vae.data import builtin as data
from vae.data import cache as datacache

FIELDS = ("x_train", "y_train", "x_test", "y_test")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_CACHE_DIR", str(tmp_path))
    data._load_builtin.cache_clear()
    yield tmp_path / "datasets"
    data._load_builtin.cache_clear()


def same(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS) and \
        (a.name, a.source, a.class_names, a.notes) == (b.name, b.source, b.class_names, b.notes)


@pytest.mark.parametrize("name", ["mnist-5k", "digits"])
def test_a_second_load_reads_the_cache_and_gives_the_parsed_arrays_bit_for_bit(cache, monkeypatch, name):
    first = data.load_dataset(name)
    assert len(list(cache.glob(f"{name}-*.npz"))) == 1
    data._load_builtin.cache_clear()
    monkeypatch.setattr(data, "_parse_builtin", lambda *a: pytest.fail("parsed again despite the cache"))
    second = data.load_dataset(name)
    assert same(first, second) and second.x_train.dtype == np.float32
    assert not second.x_train.flags.writeable  # still safe to share between pages
    monkeypatch.undo()
    assert same(second, data._parse_builtin(name, None))


def test_a_damaged_entry_is_deleted_and_the_set_parsed_again(cache):
    first = data.load_dataset("digits")
    (entry,) = cache.glob("digits-*.npz")
    entry.write_bytes(entry.read_bytes()[:1000])
    data._load_builtin.cache_clear()
    again = data.load_dataset("digits")
    assert same(first, again)
    assert entry.exists() and entry.stat().st_size > 1000  # rewritten whole


def test_the_key_follows_the_source_file(tmp_path):
    source = tmp_path / "train-images-idx3-ubyte"
    source.write_bytes(b"one")
    before = datacache.source_key("mnist", [source])
    source.write_bytes(b"other")
    assert datacache.source_key("mnist", [source]) != before


def test_images_that_are_not_exact_steps_are_not_cached(cache):
    x = np.full((2, 3, 3), 0.3337, np.float32)
    fields = {"name": "odd", "x_train": x, "x_test": x, "y_train": None, "y_test": None,
              "class_names": None, "source": "here", "notes": ()}
    assert datacache.write("odd", "k", fields) is False
    assert not datacache.entry_path("odd", "k").exists()
    fields["x_train"] = fields["x_test"] = np.full((2, 3, 3), 7 / 255, np.float32)
    assert datacache.write("odd", "k", fields) is True
    back = datacache.read("odd", "k")
    assert np.array_equal(back["x_train"], fields["x_train"]) and back["y_train"] is None
