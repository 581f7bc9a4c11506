"""Exports: the interpolation GIF, grid PNGs and the map's coordinates as CSV."""
import csv
import io

import numpy as np
import pytest
from PIL import Image

from vae.export import coordinates_csv, gif_bytes, png_bytes


def test_the_gif_loops_there_and_back_at_a_readable_size():
    frames = np.stack([np.full((28, 28), v, np.float32) for v in np.linspace(0, 1, 5)])
    gif = Image.open(io.BytesIO(gif_bytes(frames, target=168)))
    assert gif.format == "GIF" and gif.size == (168, 168) and gif.n_frames == 8  # 5 out, 3 back
    gif.seek(4)
    assert np.asarray(gif.convert("L")).mean() == pytest.approx(255, abs=1)  # the end point, white
    assert Image.open(io.BytesIO(gif_bytes(frames, bounce=False))).n_frames == 5
    with pytest.raises(ValueError, match="frames shaped"):
        gif_bytes(np.zeros((28, 28)))


def test_a_png_keeps_every_pixel():
    image = np.random.default_rng(0).integers(0, 256, (30, 50)).astype(np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(image)))), image)
    assert np.asarray(Image.open(io.BytesIO(png_bytes(np.ones((4, 4), np.float32))))).min() == 255


def test_the_csv_has_one_row_per_point_with_labels_and_means():
    mu = np.arange(12, dtype=np.float32).reshape(4, 3)
    coords = mu[:, :2] * 2
    rows = list(csv.DictReader(io.StringIO(coordinates_csv(np.array([2, 0]), coords[[2, 0]], mu, np.array([5, 6, 7, 8]),
                                                         lambda k: f"class {k}").decode())))
    assert [r["index"] for r in rows] == ["2", "0"] and rows[0]["class"] == "class 7"
    assert float(rows[0]["x"]) == 12.0 and float(rows[0]["mu_2"]) == 8.0
    unlabelled = coordinates_csv(np.array([1]), coords[[1]], mu, None, str).decode().splitlines()
    assert unlabelled[0] == "index,label,class,x,y,mu_0,mu_1,mu_2" and unlabelled[1].startswith("1,,,")
