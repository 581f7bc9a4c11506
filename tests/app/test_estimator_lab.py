"""The Estimator lab page through streamlit's AppTest: it measures on open (in the background process), Run applies
the form, bad input is refused."""
import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.app.support import figures

SMALL = {"lab_batch": 8, "lab_repeats": 4, "lab_l": [1, 4]}  # seconds of work, not the page's defaults


def settle(at: AppTest, timeout: float = 240) -> AppTest:
    """Rerun, as the page's poller does, until the background process has measured every cell."""
    deadline = time.monotonic() + timeout
    while at.get("progress"):
        assert time.monotonic() < deadline, "the lab's cells never arrived"
        time.sleep(0.5)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def open_lab(open_page):
    """open_lab(**state): the Estimator lab opened (as open_page does) and settled: every cell measured."""
    return lambda **state: settle(open_page("estimator_lab", **state))


def measured(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Measured:**"))


def test_the_page_measures_on_open_and_draws_both_figures_and_the_table(open_lab):
    at = open_lab(**SMALL)
    assert not at.error, [e.value for e in at.error]
    assert "At L=1, B's gradient variance is" in measured(at)
    variance, elbo = figures(at)
    assert variance["layout"]["xaxis"]["type"] == "log" and variance["layout"]["yaxis"]["type"] == "log"
    assert {t["name"] for t in variance["data"]} == {"estimator A", "estimator B", "∝ 1/L"}
    assert elbo["data"][0]["error_y"]["array"]  # the spread is drawn
    table = at.dataframe[0].value
    assert sorted(zip(table["estimator"], table["L"], strict=True)) == [("A", 1), ("A", 4), ("B", 1), ("B", 4)]
    assert at.expander[-1].label == "Estimators A and B, and what L does"


def test_run_applies_the_form_and_the_untrained_weights_show_the_papers_gap(open_lab):
    at = open_lab(**SMALL)
    at.multiselect(key="lab_l").set_value([2])
    at.radio(key="lab_weights").set_value("initial")
    settle(at.button[0].click().run())  # the form's Run button
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["L"]) == [2, 2]
    assert "L = 2," in " ".join(c.value for c in at.caption) and "untrained" in " ".join(c.value for c in at.caption)
    a, b = table.iloc[0], table.iloc[1]
    # at initialisation the KL's noise is all there is
    assert a["estimator"] == "A" and a["encoder"] > 100 * b["encoder"]


def test_no_value_of_l_is_refused_with_one_sentence(open_lab):
    at = open_lab(**SMALL)
    at.multiselect(key="lab_l").set_value([])
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Choose at least one value of L."]
    assert not at.get("plotly_chart")
    assert at.expander[-1].label == "Estimators A and B, and what L does"


def test_a_read_only_classroom_server_still_offers_the_lab(open_lab, monkeypatch):
    """It trains nothing and writes nothing, so read-only mode (VAE_READ_ONLY=1) keeps it."""
    monkeypatch.setenv("VAE_READ_ONLY", "1")
    st.cache_resource.clear()
    try:
        at = open_lab(**SMALL)
        assert "B's gradient variance is" in measured(at)
    finally:
        monkeypatch.delenv("VAE_READ_ONLY")
        st.cache_resource.clear()
