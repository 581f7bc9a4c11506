"""Every page through streamlit's AppTest: renders on the bundled model, and its main widgets change the view."""
import json
import time

import pytest
import streamlit as st

from tests.app.support import figures, images
from ui.pages import PAGES, page


@pytest.mark.parametrize("name", [p.name for p in PAGES])
def test_every_page_renders_on_the_bundled_model(open_page, name):
    at = open_page(name)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["model_key"].startswith("asset:")


def test_sidebar_lists_both_bundled_models_and_describes_the_chosen_one(open_page):
    at = open_page("latent_space")
    box = at.sidebar.selectbox(key="model_select")
    assert box.options == ["Bundled: mnist-5k-z2", "Bundled: mnist-5k-z16"]  # the 2-D model opens first
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "mnist-5k" in captions and "latent" in captions and "test ELBO" in captions


def test_latent_map_follows_the_split_and_projection(open_page):
    at = open_page("latent_space", model_key="asset:mnist-5k-z2.safetensors")
    fig = figures(at)[0]
    assert fig["data"][0]["type"] == "scattergl" and "1,000 test images" in fig["layout"]["title"]["text"]
    names = {t["name"] for t in fig["data"]}
    assert {"0", "7", "9"} <= names  # one trace per class: the legend names classes
    at.radio(key="map_split").set_value("train").run()
    assert "4,000 train images" in figures(at)[0]["layout"]["title"]["text"]
    at.toggle(key="map_std").set_value(True).run()
    assert "error_x" in figures(at)[0]["data"][0]


def test_larger_latent_offers_projections_and_shows_pca_while_umap_computes(open_page):
    at = open_page("latent_space", model_key="asset:mnist-5k-z16.safetensors")
    assert at.radio(key="map_method").options == ["PCA", "UMAP", "t-SNE"]
    assert "(PCA)" in figures(at)[0]["layout"]["title"]["text"]
    at.radio(key="map_method").set_value("umap").run()
    assert not at.exception
    assert any("UMAP" in i.value for i in at.info) or "(UMAP)" in figures(at)[0]["layout"]["title"]["text"]


def test_interpolation_frames_run_in_the_browser_and_follow_the_end_points(open_page):
    at = open_page("interpolate")
    frames_fig = figures(at)[0]
    assert len(frames_fig["frames"]) == 16 and frames_fig["layout"]["sliders"][0]["steps"][0]["method"] == "animate"
    before = images(at)
    at.number_input(key="ip_i1").set_value(5).run()
    assert images(at) != before
    at.radio(key="ip_kind").set_value("spherical")
    at.slider(key="ip_steps").set_value(8).run()
    assert len(figures(at)[0]["frames"]) == 8


def test_samples_follow_temperature_and_seed(open_page):
    at = open_page("samples")
    before = images(at)
    assert len(before) == 3  # prior grid, manifold, traversals
    at.slider(key="s_temp").set_value(0.5).run()
    after = images(at)
    assert after[0] != before[0] and after[1:] == before[1:]


def test_samples_for_a_larger_latent_slice_along_chosen_dimensions(open_page):
    at = open_page("samples", model_key="asset:mnist-5k-z16.safetensors")
    before = images(at)[1]
    dy = at.selectbox(key="m_dy").value
    at.selectbox(key="m_dx").set_value(dy + 1 if dy < 15 else 0).run()
    assert images(at)[1] != before


def test_compare_shows_metrics_diagnostics_aligned_maps_and_says_why_z_is_not_shared(open_page):
    at = open_page("compare")
    table = at.dataframe[0].value
    assert len(table) == 2 and "test ELBO (nats)" in table.columns
    iw_column = "IW log-lik. (K=100, N=500)"
    assert iw_column in table.columns
    # The IW column comes from the background worker; the page polls for it (here: a rerun, as its fragment would).
    deadline = time.monotonic() + 120
    while table[iw_column].isna().any() and time.monotonic() < deadline:
        time.sleep(0.5)
        table = at.run().dataframe[0].value
    def value(column):  # "-115.78 ± 0.04" -> -115.78
        return table[column].map(lambda shown: float(shown.split(" ± ")[0])).to_numpy(float)
    assert all(" ± " in shown for shown in table["test ELBO (nats)"])  # every bound with its standard error
    iw, elbo = value(iw_column), value("test ELBO (nats)")
    assert (iw > elbo).all() and (iw - elbo < 15).all(), (iw, elbo)  # a tighter bound than the ELBO, not wildly so
    diag = at.dataframe[1].value
    assert list(diag["active units"]) == [2, 16] and list(diag["collapsed"]) == [0, 0]
    assert any("PCA plane" in c.value and "unexplained" in c.value for c in at.caption)  # sizes 2 and 16 differ
    assert any("latent sizes differ" in i.value for i in at.info)
    titles = [f["layout"].get("title", {}).get("text") for f in figures(at)]
    assert "Bundled: mnist-5k-z2" in titles and "Bundled: mnist-5k-z16" in titles  # the two aligned maps


def test_compare_aligns_two_models_of_one_size_links_selection_and_decodes_one_z_through_both(open_page, runs_dir):
    from vae.config import ModelConfig, TrainConfig
    from vae.data import load_dataset
    from vae.train import train_run
    data = load_dataset("mnist-5k")
    train_run(runs_dir / "other-z16", data, ModelConfig(image_shape=data.image_shape, latent_dim=16, hidden=(64,)),
              TrainConfig(epochs=2, lr=3e-3))
    at = open_page("compare", cmp_selected=[0, 5, 9])
    at.multiselect(key="cmp_keys").set_value(["asset:mnist-5k-z16.safetensors", "run:other-z16"]).run()
    assert not any(m.value.endswith("selected**") for m in at.markdown)  # another pair: the old rows are dropped
    at.session_state["cmp_selected"] = [0, 5, 9]  # as a lasso on either map would set them
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Procrustes rotation in the latent space" in c.value for c in at.caption)
    assert not any("latent sizes differ" in i.value for i in at.info)
    assert any(m.value.startswith("**3 selected**") for m in at.markdown)  # the linked selection's images
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert any("decodes the same z rotated into its frame" in c for c in captions)
    maps = [f for f in figures(at)
            if f["layout"].get("title", {}).get("text") in ("Bundled: mnist-5k-z16", "Run: other-z16")]
    assert len(maps) == 2 and all(any(t.get("name") == "selected" for t in f["data"]) for f in maps)


def test_replay_animates_the_bundled_runs_snapshots_and_explains_their_absence(open_page):
    at = open_page("replay")
    replay = figures(at)[0]
    # the bundled run's files are one per epoch, by an earlier version: frames named by step, labelled by epoch
    assert len(replay["frames"]) == 40 and replay["frames"][0]["name"] == "0" and replay["frames"][-1]["name"] == "2400"
    # one slider moves map, samples, reconstructions
    assert replay["layout"]["sliders"][0]["steps"][-1]["label"] == "60"
    assert [t["type"] for t in replay["frames"][0]["data"]][-2:] == ["image", "image"]
    assert any("61 snapshots" in c.value for c in at.caption)
    at = open_page("replay", model_key="asset:mnist-5k-z16.safetensors")
    assert any("no training snapshots" in i.value for i in at.info)


def test_replay_follows_a_run_that_is_still_training(open_page, runs_dir):
    import os

    from vae.config import ModelConfig, TrainConfig
    from vae.data import load_dataset
    from vae.train import train_run
    data = load_dataset("digits")
    train_run(runs_dir / "replay-live", data, ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(32,)),
              TrainConfig(epochs=3))
    at = open_page("replay", model_key="run:replay-live")
    assert len(figures(at)[0]["frames"]) == 4 and not any("is training" in c.value for c in at.caption)
    (runs_dir / "replay-live" / ".lock").write_text(str(os.getpid()))  # as while a job trains into it
    try:
        at.run()
        assert any("This run is training" in c.value for c in at.caption)
    finally:
        (runs_dir / "replay-live" / ".lock").unlink()


def test_latent_space_diagnostics_name_units_and_show_kl_over_training(open_page):
    at = open_page("latent_space")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Active units"] == "2 / 2" and metrics["Collapsed dimensions"] == "0"
    titles = [f["layout"].get("title", {}).get("text", "") for f in figures(at)]
    assert "KL per dimension over training (test set)" in titles  # the bundled run kept it
    assert any(t.startswith("aggregate posterior") for t in titles)


def test_an_interpolation_link_restores_its_end_points_and_path_and_follows_changes(open_link):
    at = open_link("interpolate", model="asset:mnist-5k-z16.safetensors", start="7", end="42", path="spherical",
                   frames="9")
    assert at.radio(key="ip_mode").value == "by index"
    assert (at.number_input(key="ip_i0").value, at.number_input(key="ip_i1").value) == (7, 42)
    assert at.radio(key="ip_kind").value == "spherical" and at.slider(key="ip_steps").value == 9
    assert figures(at)[0]["layout"]["sliders"][0]["steps"][-1]["label"] == "1.00" and len(figures(at)[0]["frames"]) == 9
    at.number_input(key="ip_i1").set_value(50).run()
    assert at.query_params["end"] == "50" and at.query_params["model"] == "asset:mnist-5k-z16.safetensors"
    assert {"GIF of the path", "PNG"} <= {b.label for b in at.get("download_button")}


def test_a_samples_link_sets_temperature_and_seed_and_a_bad_value_is_named(open_link):
    at = open_link("samples", temperature="0.5", seed="banana")
    assert at.slider(key="s_temp").value == 0.5 and at.number_input(key="s_seed").value == 0
    assert any("seed='banana' is not valid here" in c.value for c in at.caption)
    assert at.query_params["seed"] == "0"  # the address bar now holds what is shown


def test_the_map_offers_its_coordinates_as_csv(open_page):
    at = open_page("latent_space")
    assert "Coordinates (CSV)" in [b.label for b in at.get("download_button")]


def test_train_page_runs_a_job_in_the_background_and_shows_its_curves(open_page, runs_dir):
    at = open_page("train")
    at.selectbox(key="tr_data").set_value("digits")
    at.text_input(key="tr_hidden").set_value("32")
    at.number_input(key="tr_epochs").set_value(3)
    at.text_input(key="tr_name").set_value("apptest-digits")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception and not at.error, [e.value for e in at.error]
    from ui.state import registry
    job = registry().wait(registry().jobs()[-1].id, timeout=120)
    assert job.state == "finished", job.message
    at.run()
    assert (runs_dir / "apptest-digits" / "model.safetensors").exists()
    from vae.runs import list_runs  # the model library the sidebar lists (checked in Chromium too)
    assert "apptest-digits" in [r.name for r in list_runs(runs_dir)]
    assert any(f["data"] and "ELBO" in json.dumps(f["layout"]) for f in figures(at))


@pytest.fixture(scope="module")
def odd_runs(runs_dir):
    """A 1-D latent on 8x8 digits, and a checkpoint whose data set is not on this machine."""
    from vae.checkpoint import save_checkpoint
    from vae.config import ModelConfig, TrainConfig
    from vae.data import load_dataset
    from vae.model import build_model
    from vae.train import train_run
    digits = load_dataset("digits")
    train_run(runs_dir / "digits-z1", digits, ModelConfig(image_shape=(8, 8), latent_dim=1, hidden=(32,)),
              TrainConfig(epochs=2))
    (runs_dir / "elsewhere").mkdir()
    save_checkpoint(runs_dir / "elsewhere" / "model.safetensors",
                    build_model(ModelConfig(image_shape=(28, 28), latent_dim=2, hidden=(16,))),
                    dataset={"name": "mnist", "image_shape": [28, 28]}, summary={"epochs": 0})
    return runs_dir


@pytest.mark.parametrize("name", ["latent_space", "interpolate", "samples"])
def test_a_1d_latent_on_8x8_digits_is_handled_on_every_page(open_page, odd_runs, name):
    at = open_page(name, model_key="run:digits-z1")
    assert not at.error, [e.value for e in at.error]
    if name == "samples":
        assert any("at least two dimensions" in i.value for i in at.info)
        assert len(images(at)) == 2  # prior samples and the single traversal row


@pytest.mark.parametrize("name", ["latent_space", "interpolate"])
def test_missing_data_is_named_with_where_to_get_it(open_page, odd_runs, name, monkeypatch):
    monkeypatch.delenv("VAE_DATA_DIR", raising=False)
    at = open_page(name, model_key="run:elsewhere")
    text = " ".join(w.value for w in at.warning)
    assert "MNIST" in text and "--data-dir" in text and not at.exception


def test_compare_says_why_maps_are_not_side_by_side_for_different_data(open_page, odd_runs):
    at = open_page("compare", cmp_keys=["asset:mnist-5k-z2.safetensors", "run:digits-z1"])
    infos = " ".join(i.value for i in at.info)
    assert "same data set" in infos and "same latent size" in infos


def test_read_only_mode_offers_no_training_and_no_uploads_but_watches_runs(new_app, monkeypatch, odd_runs):
    monkeypatch.setenv("VAE_READ_ONLY", "1")
    st.cache_resource.clear()
    try:
        at = new_app()
        at.run()
        assert not at.exception
        assert not at.get("file_uploader"), "read-only mode must offer no upload"
        at.switch_page(page("train").path).run()  # the Train page only watches there
        assert not at.exception and at.header[0].value == "Watch training"
        assert not at.get("form") and not [b for b in at.button if b.label in ("Stop", "Pause", "Start training")]
        assert at.selectbox(key="tr_watch").options  # the runs folder's runs, to watch
    finally:
        monkeypatch.delenv("VAE_READ_ONLY")
        st.cache_resource.clear()


def test_a_read_only_server_titles_the_train_page_watch_training():
    from ui.pages import visible_pages
    shown = {p.name: p.title for p in visible_pages(read_only=True)}
    assert shown["train"] == "Watch training" and len(shown) == len(visible_pages(read_only=False))


def test_a_link_opens_the_model_it_names_and_the_url_follows_the_choice(new_app):
    at = new_app()
    at.query_params["model"] = "asset:mnist-5k-z16.safetensors"
    at.run()
    assert at.session_state["model_key"] == "asset:mnist-5k-z16.safetensors"
    at.sidebar.selectbox(key="model_select").set_value("asset:mnist-5k-z2.safetensors").run()
    assert at.query_params["model"] == "asset:mnist-5k-z2.safetensors"


def test_an_encoding_of_both_splits_finds_images_without_copying_them():
    import numpy as np

    from ui.state import Encoding
    train, test = np.arange(3 * 4).reshape(3, 2, 2), 100 + np.arange(2 * 4).reshape(2, 2, 2)
    enc = Encoding(mu=np.zeros((5, 2)), logvar=np.zeros((5, 2)), labels=None, parts=(train, test))
    np.testing.assert_array_equal(enc.images([0, 2, 3, 4]), np.stack([train[0], train[2], test[0], test[1]]))
    assert enc.parts[0] is train and len(enc) == 5


def test_a_link_names_the_run_the_train_page_watches(new_app, odd_runs):
    at = new_app()
    at.query_params["run"] = "elsewhere"
    at.switch_page(page("train").path).run()
    assert not at.exception and at.session_state["tr_watch"] == "elsewhere"
    at.selectbox(key="tr_watch").set_value("digits-z1").run()
    assert at.query_params["run"] == "digits-z1"  # the address bar is the link to hand out

    at = new_app()
    at.query_params["run"] = "no-such-run"
    at.switch_page(page("train").path).run()
    assert any("'no-such-run' has not started yet" in i.value for i in at.info)  # awaited, not refused
    assert at.query_params["run"] == "no-such-run"  # the teacher's link is kept until its run starts
