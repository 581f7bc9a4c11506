"""The browser layer's fixtures: the system Chromium driven by Playwright, one `streamlit run app.py` shared by a
module's page tests, and a fresh browser session for each test. (What the tests call is in support.py.)"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.browser.support import CHROMIUM_ARGS, VIEWPORT, App, running_app

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the [test] extra installs it
    sync_playwright = None


@pytest.fixture(scope="session")
def chromium(require) -> str:
    """The system Chromium's path (never a downloaded one)."""
    require(sync_playwright is not None, "the playwright Python package is not installed (pip install -e '.[test]')")
    path = shutil.which("chromium") or "/usr/bin/chromium"
    require(Path(path).exists(), "Chromium is not installed (Debian: apt-get install chromium); "
                                 "the browser tests drive the system Chromium, never a downloaded one")
    return path


@pytest.fixture(scope="module")
def browser(chromium):
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def app(browser, repo, tmp_path_factory) -> App:
    """The app shared by a module's page tests. It is opened once at its root first: a fresh server that is
    first asked for a deep link runs the page without app.py (see test_pages.py's deep-link test)."""
    with running_app(repo, tmp_path_factory.mktemp("browser-app")) as server:
        context = browser.new_context(viewport=VIEWPORT)
        warm = context.new_page()
        warm.goto(server.url)
        warm.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model").wait_for(timeout=90_000)
        context.close()
        yield server


@pytest.fixture
def page(browser, app):
    """A fresh browser context (a new Streamlit session) that records the app's websocket traffic."""
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    frames: list[tuple[str, float]] = []

    def on_websocket(ws):
        if "/_stcore/stream" in ws.url:
            ws.on("framesent", lambda _: frames.append(("sent", time.monotonic())))
            ws.on("framereceived", lambda _: frames.append(("received", time.monotonic())))

    pg.on("websocket", on_websocket)
    pg.ws_frames = frames  # read by the tests
    yield pg
    context.close()
