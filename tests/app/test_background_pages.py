"""Pages through AppTest: their slow numbers arrive from the background process, never from the page's own
interpreter (each computing function is made to fail in this process, so a page computing it here would error),
and the Estimator lab shows its progress while its cells arrive."""
import json
import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import ui.state
import vae.compare
import vae.diagnostics
import vae.estimators
import vae.inputs
import vae.projections
from tests.app.support import titles
from ui.pages import page

SMALL_LAB = {"lab_batch": 8, "lab_repeats": 4, "lab_l": [1, 4]}


@pytest.fixture(autouse=True)
def fresh_runs(tmp_path, monkeypatch):
    """An empty runs folder (so nothing is cached yet: the bundled models' shipped results are not seeded),
    and the slow functions made to fail in this process."""
    monkeypatch.setenv("VAE_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(ui.state, "seed_cache", lambda *args: 0)
    st.cache_resource.clear()  # settings() read again; the previous worker (and its process) released
    st.cache_data.clear()

    def not_here(*args, **kwargs):
        raise AssertionError("computed in the page's own process")

    real_project = vae.projections.project

    def project_here_only_pca(mu, method, **kw):
        return not_here() if method in ("umap", "tsne") else real_project(mu, method, **kw)

    monkeypatch.setattr(vae.projections, "project", project_here_only_pca)
    for module, name in ((vae.estimators, "study_cell"), (vae.estimators, "cached_study_cell"),
                         (vae.diagnostics, "iw_curve"), (vae.diagnostics, "cached_iw_curve"),
                         (vae.compare, "cached_iw_estimate"), (vae.inputs, "iw_log_likelihoods")):
        monkeypatch.setattr(module, name, not_here)
    yield tmp_path
    st.cache_resource.clear()


@pytest.fixture
def open_directly(new_app):
    """open_directly(name, **state): the app's first run is the page's, as when a deep link opens it (open_page
    runs the default page first)."""
    def open_(name: str, **state) -> AppTest:
        at = new_app(**state)
        at.switch_page(page(name).path).run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return open_


def rerun_until(at: AppTest, done, timeout: float = 240) -> AppTest:
    """Rerun as the page's poller would, until `done(at)`."""
    deadline = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < deadline, "the background result never arrived"
        time.sleep(0.5)
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    return at


def test_the_labs_cells_arrive_from_the_background_with_progress_and_a_second_visit_is_instant(open_directly,
                                                                                              fresh_runs):
    at = open_directly("estimator_lab", **SMALL_LAB)
    progress = [el.proto.text for el in at.get("progress")]
    assert progress and "of 2 values of L done" in progress[0]  # shown while the process measures

    def measured(at):
        return any(m.value.startswith("**Measured:**") for m in at.markdown) and not at.get("progress")

    rerun_until(at, measured)
    table = at.dataframe[0].value
    assert sorted(zip(table["estimator"], table["L"], strict=True)) == [("A", 1), ("A", 4), ("B", 1), ("B", 4)]
    assert len(list((fresh_runs / "cache").glob("*/estimator-cell-trained-b8-r4-L*-s0.json"))) == 2
    again = open_directly("estimator_lab", **SMALL_LAB)  # another session: read from the cache at once
    assert measured(again) and again.dataframe[0].value.equals(table)


def test_umap_and_the_iw_curve_arrive_from_the_background(open_directly, fresh_runs):
    at = open_directly("latent_space", model_key="asset:mnist-5k-z16.safetensors", map_method="umap")

    def computing(at):
        return any("UMAP is being computed in the background" in i.value for i in at.info)

    def iw_gain(at):
        return next(m.value for m in at.metric if m.label == "IW gain at K=5000")

    assert computing(at) and iw_gain(at) == "computing…"
    rerun_until(at, lambda at: not computing(at) and iw_gain(at) != "computing…")
    assert "(UMAP)" in titles(at)[0] and titles(at).count("IW bound rising from the ELBO towards log p(x)") == 1
    assert iw_gain(at).endswith("nats") and float(iw_gain(at).split()[0]) >= 0
    assert list((fresh_runs / "cache").glob("*/projection-umap-test-1000-0.npz"))


@pytest.mark.slow  # Compare draws two models' maps and diagnostics on every rerun
def test_compares_iw_column_arrives_from_the_background(open_directly, fresh_runs):
    at = open_directly("compare")
    column = next(c for c in at.dataframe[0].value.columns if c.startswith("IW log-lik."))
    assert at.dataframe[0].value[column].isna().all()
    rerun_until(at, lambda at: not at.dataframe[0].value[column].isna().any())
    assert len(list((fresh_runs / "cache").glob("*/iw-mean-500-0-k100.json"))) == 2


def test_your_input_has_its_reference_likelihoods_made_in_the_background_before_anything_is_drawn(open_directly,
                                                                                                  fresh_runs):
    at = open_directly("your_input")
    assert not at.error
    deadline = time.monotonic() + 120
    while not list((fresh_runs / "cache").glob("*/iw-reference-300-0-k100.json")):
        assert time.monotonic() < deadline, "the reference likelihoods never arrived"
        time.sleep(0.5)
    values = json.loads(next((fresh_runs / "cache").glob("*/iw-reference-300-0-k100.json")).read_text())
    assert len(values) == 300 and all(-400 < v < 0 for v in values)
