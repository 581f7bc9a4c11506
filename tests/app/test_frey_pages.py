"""Every page on a tiny Frey Face model (trained here, in this module's runs folder): maps coloured by frame with a
"frame" colour bar, images drawn 28 high and 20 wide, and no page that assumes labels or square images."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.app.support import figures, images, values
from ui.figures.maps import FRAME_TITLE
from vae.checkpoint import load_checkpoint
from vae.latent import manifold_grid, traversals
from vae.pictures import tile
from vae.snapshots import load_snapshots

FREY = "run:frey-z2"
OTHER = "run:frey-z2-seed1"


@pytest.fixture(scope="module")
def frey_runs(runs_dir, frey_dir, tmp_path_factory):
    """Two tiny Frey models (2-D latent, Gaussian decoder) in the module's runs folder, and $VAE_DATA_DIR set so
    the app finds their data as a user's server would ($VAE_DATA_DIR/frey/frey_rawface.mat)."""
    from vae.config import ModelConfig, TrainConfig
    from vae.data import load_dataset
    from vae.train import train_run
    root = tmp_path_factory.mktemp("data")
    (root / "frey").symlink_to(frey_dir)
    mp = pytest.MonkeyPatch()
    mp.setenv("VAE_DATA_DIR", str(root))
    data = load_dataset("frey")
    config = ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(32,), likelihood="gaussian")
    train_run(runs_dir / FREY.partition(":")[2], data, config, TrainConfig(epochs=2, lr=3e-3))
    train_run(runs_dir / OTHER.partition(":")[2], data, config, TrainConfig(epochs=1, lr=3e-3, seed=1))
    yield data
    mp.undo()


def frame_coloured(fig: dict) -> list[dict]:
    """The traces of a figure coloured by frame, with the colour bar titled "frame"."""
    def bar_title(trace):
        return trace.get("marker", {}).get("colorbar", {}).get("title", {}).get("text")
    return [t for t in fig["data"] if bar_title(t) == FRAME_TITLE]


def png_size(uri: str) -> tuple[int, int]:
    """(height, width) of an inline PNG."""
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        return im.height, im.width


def test_the_map_is_coloured_by_frame_with_a_frame_colour_bar(open_page, frey_runs):
    at = open_page("latent_space", model_key=FREY)
    assert not at.error, [e.value for e in at.error]
    fig = figures(at)[0]
    (trace,) = frame_coloured(fig)
    assert trace["type"] == "scattergl" and "200 test images" in fig["layout"]["title"]["text"]
    np.testing.assert_array_equal(values(trace["marker"]["color"]), frey_runs.frame_test)  # each point's own frame
    assert trace["marker"]["showscale"] and trace["marker"]["colorscale"]  # a continuous scale, not classes
    assert "frame %{marker.color}" in trace["hovertemplate"]  # hover names the frame
    assert not any("label" in t.get("hovertemplate", "") for t in fig["data"])
    at.radio(key="map_split").set_value("all").run()
    assert not at.exception
    (trace,) = frame_coloured(figures(at)[0])
    assert sorted(values(trace["marker"]["color"])) == list(range(1965))


def test_interpolation_names_frames_and_draws_28_by_20_images(open_page, frey_runs):
    at = open_page("interpolate", model_key=FREY)
    assert not at.error, [e.value for e in at.error]
    frames_fig, map_fig = figures(at)[:2]
    start, end = frey_runs.frame_test[[0, -1]]  # two expressions far apart in the video, not neighbours
    assert frames_fig["layout"]["title"]["text"] == f"frame {start} → frame {end}"
    z = values(frames_fig["data"][0]["z"])
    assert z.shape == (28, 20)  # 28 high, 20 wide: never squashed into a square
    assert frame_coloured(map_fig) and any(t["name"] == "path" for t in map_fig["data"])
    at.radio(key="ip_mode").set_value("by class").run()  # no labels: says so and falls back to indices
    assert any("no labels" in i.value for i in at.info)


def test_samples_manifold_and_traversals_render_at_28_by_20(open_page, frey_runs, runs_dir):
    at = open_page("samples", model_key=FREY)
    assert not at.error, [e.value for e in at.error]
    assert len(images(at)) == 3  # prior grid, manifold, traversals
    # What the page tiles: the manifold and the traversals keep the images' own shape.
    model = load_checkpoint(runs_dir / FREY.partition(":")[2] / "model.safetensors").model
    grid, _ = manifold_grid(model, 5)
    assert grid.shape == (5, 5, 28, 20) and tile(grid).shape == (5 * 29 - 1, 5 * 21 - 1)
    assert traversals(model, np.zeros(2, np.float32), [0, 1]).shape == (2, 9, 28, 20)


def test_replay_colours_its_map_by_frame_and_keeps_the_pictures_28_by_20(open_page, frey_runs):
    at = open_page("replay", model_key=FREY)
    assert not at.error, [e.value for e in at.error]
    fig = figures(at)[0]
    assert len(fig["frames"]) == 3  # epochs 0, 1, 2
    (trace,) = frame_coloured(fig)
    assert set(values(trace["marker"]["color"]).tolist()) <= set(frey_runs.frame_test.tolist())
    samples, reconstructions = (t for t in fig["data"] if t["type"] == "image")
    assert png_size(samples["source"]) == (4 * 29 - 1, 4 * 21 - 1)  # a 4 x 4 grid of 28 x 20 images
    assert png_size(reconstructions["source"]) == (2 * 29 - 1, 8 * 21 - 1)


def test_the_train_pages_live_map_of_a_frey_run_is_coloured_by_each_points_frame(open_page, frey_runs, runs_dir):
    at = open_page("train", tr_watch=FREY.partition(":")[2])
    assert not at.error, [e.value for e in at.error]
    newest = load_snapshots(runs_dir / FREY.partition(":")[2] / "snapshots")[-1]
    assert next(c.value for c in at.caption if c.value.startswith("Latent map at")).startswith(
        f"Latent map at step {newest.step:,} (epoch 2)")
    (live,) = [f for f in figures(at) if frame_coloured(f)]  # the curves have no colour bar: the live map
    (trace,) = frame_coloured(live)
    np.testing.assert_array_equal(values(trace["marker"]["color"]), frey_runs.frame_test[newest.index])
    samples, _ = (t for t in live["data"] if t["type"] == "image")
    assert png_size(samples["source"]) == (4 * 29 - 1, 4 * 21 - 1)  # faces, 28 high and 20 wide


def test_compare_aligns_two_frey_maps_coloured_by_frame_and_shows_no_bits_per_dim(open_page, frey_runs):
    at = open_page("compare", cmp_keys=[FREY, OTHER])
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert table["bits/dim"].isna().all()  # a Gaussian decoder's bound is a density: no bits without discretising
    maps = [f for f in figures(at) if frame_coloured(f)]
    assert len(maps) == 2  # the reference and the aligned map
    at.session_state["cmp_selected"] = [0, 5, 9]  # as a lasso would set it
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_compare_of_a_frey_and_a_digit_model_decodes_the_same_z_through_each(open_page, frey_runs):
    at = open_page("compare", cmp_keys=["asset:mnist-5k-z2.safetensors", FREY])
    assert not at.error, [e.value for e in at.error]
    assert any("same data set" in i.value for i in at.info)
    assert len(images(at)) == 2  # one row of prior samples per model


def test_your_input_says_a_face_model_is_not_for_digits_and_maps_by_frame(open_page, frey_runs):
    at = open_page("your_input", model_key=FREY)
    assert not at.error, [e.value for e in at.error]
    assert any("learned frey, not digits" in i.value for i in at.info)
    assert frame_coloured(figures(at)[0])


def test_the_estimator_lab_renders(open_page, frey_runs):
    at = open_page("estimator_lab", model_key=FREY)
    assert not at.error, [e.value for e in at.error]


def test_the_elbo_anatomy_of_a_face_says_it_has_no_classes_offers_no_canvas_and_samples_grey_pixels(open_page,
                                                                                                  frey_runs):
    at = open_page("anatomy", model_key=FREY, an_way="class")  # Frey Face: a Gaussian decoder, no labels
    assert not at.error, [e.value for e in at.error]
    assert len(images(at)) == 3
    assert any("has no labels" in i.value for i in at.info)
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert captions[0].startswith("test image 0 (frame ") and captions[2] == "mean + σ · noise, clipped to [0, 1]"
    at.radio(key="an_way").set_value("map").run()
    assert frame_coloured(figures(at)[0])
    at.radio(key="an_way").set_value("draw").run()
    assert any("Drawing is offered for digit models only" in i.value for i in at.info)
    assert not at.get("bidi_component") and not at.exception
