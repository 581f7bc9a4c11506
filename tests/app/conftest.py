"""The AppTest layer's fixtures: a fresh runs folder for each module, and app.py opened as a browser would open it
(Streamlit's AppTest runs the script in this process, without a server). (What the tests call is in support.py.)"""
from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ui.pages import page


@pytest.fixture(scope="module", autouse=True)
def runs_dir(tmp_path_factory):
    """Every AppTest module writes into a runs folder of its own, never the user's; settings() and the job
    registry are read again with it (Streamlit's caches cleared), and cleared again afterwards."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("app-runs")
    mp.setenv("VAE_RUNS_DIR", str(root))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield root
    mp.undo()
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(scope="session")
def new_app(repo):
    """new_app(**state): app.py in an AppTest, not yet run, with `state` put in its session state."""
    def make(**state) -> AppTest:
        at = AppTest.from_file(str(repo / "app.py"), default_timeout=120)
        for key, value in state.items():
            at.session_state[key] = value
        return at
    return make


@pytest.fixture(scope="session")
def open_page(new_app):
    """open_page(name, **state): the app run at its root, then switched to the page of ui.pages.PAGES named
    `name` (as a browser session that opens the app and clicks the page's link); no exception on the way.
    (AppTest drops sidebar elements written beside st.navigation on reruns, a test-harness quirk; the sidebar
    is checked on the first run here and in Chromium.)"""
    def open_(name: str, **state) -> AppTest:
        at = new_app(**state)
        at.run()
        if not page(name).default:
            at.switch_page(page(name).path)
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return open_


@pytest.fixture(scope="session")
def open_link(new_app):
    """open_link(name, **params): open a page from a link carrying ?params, as a student handed the URL would."""
    def open_(name: str, **params) -> AppTest:
        at = new_app()
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
        at.switch_page(page(name).path)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return open_
