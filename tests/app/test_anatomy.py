"""The ELBO anatomy page through AppTest: every stage is drawn for an image chosen each way (index, class, a click
on the map, a drawing), a link restores the page and the page writes its link, a bad link value is named in one
sentence, and "New ε" moves z and the sample but never mu or sigma."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from streamlit.typing import PlotlyState

from tests.app.support import figures, images, titles

Z16 = "asset:mnist-5k-z16.safetensors"
FIGURES = ("q(z|x) per dimension against the prior", "log p(x_i|z) per pixel: total", "KL per dimension (appendix B)",
           "The bound's estimators for this image")


def stages(at: AppTest) -> dict[str, str]:
    """The pipeline's printed vectors: {"μ": "(0.12, -1.30)", "σ": ..., "ε": ..., "z": ...}."""
    found = (re.fullmatch(r"(μ|σ|ε|z) = (\(.*\))", c.value) for c in at.caption)
    return {m.group(1): m.group(2) for m in found if m}


def chosen(at: AppTest) -> str:
    """What the pipeline's first image is called ("test image 42 (a 7)", "your drawing")."""
    return [img.caption for el in at.get("image") for img in el.proto.imgs][0]


def assert_every_stage(at: AppTest) -> None:
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert set(stages(at)) == {"μ", "σ", "ε", "z"}
    assert len(images(at)) == 3  # x, the decoded mean, a sample of p(x|z)
    assert all(any(t.startswith(want) for t in titles(at)) for want in FIGURES), titles(at)
    line = next(m.value for m in at.markdown if m.value.startswith("**ELBO for this ε**"))
    recon, kl, elbo = map(float, re.search(r"= (-?[\d.]+) − (-?[\d.]+) = \*\*(-?[\d.]+) nats", line).groups())
    assert elbo == pytest.approx(recon - kl, abs=0.011)  # the sum, as printed
    table = at.table[0].value
    assert list(table["estimator"]) == ["A (eq. 6)", "B (eq. 7)", "IW bound (Burda et al.)"]
    assert list(table["samples"]) == ["L = 100", "L = 100", "K = 100"]


def test_an_image_chosen_by_index_goes_through_every_stage_and_the_link_follows(open_page, mnist5k):
    at = open_page("anatomy")
    assert_every_stage(at)
    assert chosen(at) == f"test image 0 (a {mnist5k.y_test[0]})"
    before, shown = stages(at), images(at)
    at.number_input(key="an_index").set_value(42).run()
    assert_every_stage(at)
    assert chosen(at).startswith("test image 42 ")
    assert stages(at)["μ"] != before["μ"] and images(at)[0] != shown[0]
    assert (at.query_params["image"], at.query_params["way"], at.query_params["eps"]) == ("42", "index", "0")


def test_an_image_chosen_by_class(open_page, mnist5k):
    at = open_page("anatomy")
    at.radio(key="an_way").set_value("class").run()
    at.selectbox(key="an_class").set_value(3)
    at.number_input(key="an_nth").set_value(4).run()
    assert_every_stage(at)
    row = int(np.flatnonzero(mnist5k.y_test == 3)[4])
    assert chosen(at) == f"test image {row} (a 3)" and at.query_params["image"] == str(row)
    assert at.query_params["way"] == "class"


def test_an_image_clicked_on_the_map(open_page):
    at = open_page("anatomy")
    at.radio(key="an_way").set_value("map").run()
    the_map = next(f for f in figures(at) if f["layout"]["title"]["text"].startswith("Click a test image"))
    assert the_map["layout"]["dragmode"] not in ("lasso", "select")  # Streamlit selects clicked points only then
    # What the browser sends for a click on one point (tests/browser/test_anatomy.py clicks in Chromium)
    at.session_state["an_map"] = PlotlyState({"selection": {"points": [{"customdata": 42}], "point_indices": [0],
                                                            "box": [], "lasso": []}})
    at.run()
    assert_every_stage(at)
    assert chosen(at).startswith("test image 42 ") and at.query_params["image"] == "42"
    selected = [t for f in figures(at) for t in f["data"] if t.get("name") == "selected"]
    assert len(selected) == 1  # the chosen image is circled on the map


def digit_png(mnist5k) -> str:
    """A test digit as the canvas sends it: a 280-pixel PNG data URL, black ink on white."""
    big = Image.fromarray((255 - mnist5k.x_test[0] * 255).astype(np.uint8)).resize((280, 280), Image.BILINEAR)
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_a_drawn_image_goes_through_every_stage_but_not_into_the_link(open_page, mnist5k):
    at = open_page("anatomy")
    at.radio(key="an_way").set_value("draw").run()
    assert any("Draw a digit on the canvas" in i.value for i in at.info)
    assert not stages(at) and not at.error
    at.session_state["an_canvas"] = {"png": digit_png(mnist5k)}  # the canvas's state after a stroke
    at.run()
    assert_every_stage(at)
    assert chosen(at) == "your drawing"
    assert at.query_params["way"] == "draw" and "image" not in at.query_params
    assert any("A drawing cannot travel in a link" in c.value for c in at.caption)


def test_a_link_restores_the_image_the_way_the_draw_and_the_sample_sizes(open_link, mnist5k):
    at = open_link("anatomy", model=Z16, way="class", image="42", eps="3", L="50", K="10")
    assert at.radio(key="an_way").value == "class"
    assert at.selectbox(key="an_class").value == int(mnist5k.y_test[42])
    assert chosen(at).startswith("test image 42 ")
    assert (at.slider(key="an_l").value, at.select_slider(key="an_k").value) == (50, 10)
    assert any(c.value == "ε draw 3" for c in at.caption)
    assert stages(at)["z"].endswith("; 16 values)")  # the 16-D model
    assert list(at.table[0].value["samples"]) == ["L = 50", "L = 50", "K = 10"]
    assert (at.query_params["model"], at.query_params["image"], at.query_params["eps"]) == (Z16, "42", "3")
    again = open_link("anatomy", model=Z16, way="class", image="42", eps="3", L="50", K="10")
    assert stages(again) == stages(at) and images(again) == images(at)  # one link, one picture


def test_bad_link_values_are_named_in_one_sentence_and_ignored(open_link, mnist5k):
    at = open_link("anatomy", way="sideways", image="5000", K="7", eps="-1")
    captions = " ".join(c.value for c in at.caption)
    for param, raw in (("way", "sideways"), ("image", "5000"), ("K", "7"), ("eps", "-1")):
        assert f"The link's {param}='{raw}' is not valid here and was ignored." in captions
    assert_every_stage(at)
    assert chosen(at) == f"test image 0 (a {mnist5k.y_test[0]})"
    assert (at.query_params["way"], at.query_params["image"], at.query_params["K"]) == ("index", "0", "100")


def test_new_eps_moves_z_and_the_sample_but_not_mu_or_sigma(open_page):
    at = open_page("anatomy", model_key=Z16)
    before, shown = stages(at), images(at)
    estimates = list(at.table[0].value["estimate (nats)"])
    at.button(key="an_new_eps").click().run()
    after = stages(at)
    assert (after["μ"], after["σ"]) == (before["μ"], before["σ"])
    assert after["ε"] != before["ε"] and after["z"] != before["z"]
    now = images(at)
    assert now[0] == shown[0] and now[1] != shown[1] and now[2] != shown[2]  # x stays; the mean and sample move
    assert list(at.table[0].value["estimate (nats)"]) != estimates
    assert any(c.value == "ε draw 1" for c in at.caption) and at.query_params["eps"] == "1"


def test_a_view_too_slow_for_a_conv_decoder_is_refused_in_one_sentence(open_link, runs_dir):
    from vae.checkpoint import save_checkpoint
    from vae.config import ModelConfig
    from vae.model import build_model
    (runs_dir / "conv-z8").mkdir()
    save_checkpoint(runs_dir / "conv-z8" / "model.safetensors",
                    build_model(ModelConfig(image_shape=(28, 28), latent_dim=8, arch="conv", hidden=(16,))),
                    dataset={"name": "mnist-5k", "image_shape": [28, 28]}, summary={"epochs": 0})
    at = open_link("anatomy", model="run:conv-z8", L="1000", K="1000")
    assert [e.value for e in at.error] == ["L = 1000 and K = 1000 decode this conv model 10,000 times, over the 2,000 "
                                           "one view allows (a second of a shared server); lower L or K."]
    assert not stages(at)
    at.select_slider(key="an_k").set_value(100).run()
    at.slider(key="an_l").set_value(100).run()
    assert not at.error and set(stages(at)) == {"μ", "σ", "ε", "z"}
