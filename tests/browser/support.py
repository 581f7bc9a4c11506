"""The browser-test machinery shared by tests/test_browser.py, tests/test_uploads_browser.py and
tests/test_load.py: a `streamlit run app.py` server on a free port, the system Chromium driven by
Playwright, and the helpers that wait for a page to finish drawing.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, require

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the [test] extra installs it
    sync_playwright = None

VIEWPORT = {"width": 1400, "height": 1000}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# url_path as Streamlit derives it from st.Page("app_pages/<name>.py") in app.py: the file name without
# ".py"; the default page (Latent space) is served at the root.
# (url path, header the page writes, the title of its closing "explain" expander: the script's last element)
PAGES = {
    "latent-space": ("", "Latent space", "What is this map?"),
    "interpolate": ("interpolate", "Interpolate", "Why interpolate in the latent space?"),
    "samples": ("samples", "Samples", "What are these pictures?"),
    "replay": ("replay", "Replay training", "What am I watching?"),
    "compare": ("compare", "Compare checkpoints", "Reading the table"),
    "reproduce": ("reproduce", "Paper figures", "What does figure 2 show?"),
    "your-input": ("your_input", "Your input", "How is my input judged?"),
    "estimator-lab": ("estimator_lab", "Estimator lab", "Estimators A and B, and what L does"),
    "train": ("train", "Train", "What happens during training?"),
}


# -- the server and the browser ----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    def __init__(self, url: str, log: Path, runs: Path, pid: int | None = None):
        self.url, self.log, self.runs, self.pid = url, log, runs, pid

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture(scope="module")
def chromium() -> str:
    require(sync_playwright is not None, "the playwright Python package is not installed (pip install -e '.[test]')")
    path = shutil.which("chromium") or "/usr/bin/chromium"
    require(Path(path).exists(), "Chromium is not installed (Debian: apt-get install chromium); "
                                 "the browser tests drive the system Chromium, never a downloaded one")
    return path


@contextlib.contextmanager
def running_app(tmp: Path, env: dict[str, str] | None = None):
    """`streamlit run app.py` on a free port with an empty runs folder; killed (its whole group) on exit.
    `env` adds to (or overrides) the server's environment."""
    runs = tmp / "runs"
    runs.mkdir()
    port = _free_port()
    env = {**os.environ, "VAE_RUNS_DIR": str(runs), "OMP_NUM_THREADS": "1", **(env or {})}
    log_path = tmp / "streamlit.log"
    with open(log_path, "wb") as log:
        # As the README starts it: the shipped .streamlit/config.toml (no file watcher) applies.
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        server = App(f"http://127.0.0.1:{port}", log_path, runs, proc.pid)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"streamlit exited with code {proc.returncode}:\n{server.log_tail()}")
                try:
                    with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as r:
                        if r.read().decode().strip() == "ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not answer /_stcore/health within 60 s:\n{server.log_tail()}")
                time.sleep(0.25)
            yield server
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser(chromium):
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def app(browser, tmp_path_factory) -> App:
    """The app shared by the page tests. It is opened once at its root first: a fresh server that is
    first asked for a deep link runs the page without app.py (see the deep-link test below)."""
    with running_app(tmp_path_factory.mktemp("browser-app")) as server:
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


# -- helpers -----------------------------------------------------------------------------------
def open_page(page, app: App, name: str):
    """Load a page and wait until its script has run to the end (its closing expander is drawn)."""
    path, header, closing = PAGES[name]
    page.goto(f"{app.url}/{path}")
    main = page.locator('[data-testid="stMain"]')
    done = main.locator('[data-testid="stExpander"]').filter(has_text=closing)
    if name == "train":  # with no runs yet the page stops before its expander
        done = done.or_(main.locator('[data-testid="stAlert"]').filter(has_text="No runs yet"))
    done.wait_for(timeout=90_000)
    heading = main.locator("h2").first.inner_text().strip()
    assert heading == header, f"/{path} shows {heading!r}, not the {header} page"
    return main


def assert_no_errors(page, app: App) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, (f"exception box: {exceptions.all_inner_texts()}\n"
                                     f"server log:\n{app.log_tail()}")
    errors = page.locator('[data-testid="stAlert"]').filter(has=page.locator('[data-testid="stAlertContentError"]'))
    assert errors.count() == 0, f"error alerts: {errors.all_inner_texts()}"


def wait_for_plots(page, at_least: int = 1) -> None:
    """Plotly has drawn `at_least` charts in the main area (their SVG exists and has a size)."""
    page.wait_for_function(
        """n => [...document.querySelectorAll('[data-testid="stMain"] div.stPlotlyChart .main-svg')]
                 .filter(s => s.getBoundingClientRect().width > 0).length >= n""", arg=at_least, timeout=60_000)


def wait_for_images(page, at_least: int = 1) -> None:
    """`at_least` images in the main area, every one decoded (naturalWidth > 0)."""
    page.wait_for_function(
        """n => { const imgs = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img')];
                  return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        arg=at_least, timeout=60_000)

