"""What the browser tests call (not fixtures: those are in conftest.py beside this file): a `streamlit run
app.py` server on a free port, the helpers that wait for a page to finish drawing, and the screenshots.

Every page of ui.pages.PAGES is reached by its name; what each one draws when its script has run to the end
is in DRAWN (tests/unit/test_architecture.py checks that it names exactly the table's pages).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from ui.pages import page as page_spec
from vae.metrics import posterior_stats

VIEWPORT = {"width": 1400, "height": 1000}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# page name -> (the header the page writes, the title of its closing "explain" expander: the script's last element)
DRAWN = {
    "latent_space": ("Latent space", "What is this map?"),
    "interpolate": ("Interpolate", "Why interpolate in the latent space?"),
    "samples": ("Samples", "What are these pictures?"),
    "replay": ("Replay training", "What am I watching?"),
    "compare": ("Compare checkpoints", "Reading the table"),
    "reproduce": ("Paper figures", "What does figure 2 show?"),
    "your_input": ("Your input", "How is my input judged?"),
    "anatomy": ("ELBO anatomy", "How the stages add up to the bound"),
    "estimator_lab": ("Estimator lab", "Estimators A and B, and what L does"),
    "train": ("Train", "What happens during training?"),
}
# Streamlit marks what a rerun has not redrawn yet as stale; none left: the page has settled.
SETTLED = """() => document.querySelectorAll('[data-stale="true"]').length === 0"""
# The Train page's progress line (null when there is none).
PROGRESS = """() => { const p = document.querySelector('[data-testid="stMain"] [data-testid="stProgress"]');
                      return p ? p.innerText.trim() : null; }"""

# The Train page's live view as a student watching it sees it: every change of the progress line, the live map's
# caption and the map's points (the first points of its first trace, as Plotly drew them), with the time, in order,
# in window.__livelog.
LIVE_PROBE = """() => {
  const log = window.__livelog = [];
  const t0 = performance.now();
  const snap = () => {
    const main = document.querySelector('[data-testid="stMain"]');
    if (!main) return;
    const prog = main.querySelector('[data-testid="stProgress"]');
    const text = prog ? prog.innerText.trim() : null;
    const cap = [...main.querySelectorAll('[data-testid="stCaptionContainer"]')]
      .map(c => c.innerText.trim()).find(c => c.startsWith('Latent map at')) || null;
    const map = [...main.querySelectorAll('.js-plotly-plot')].find(gd => ((gd.layout || {}).annotations || [])
      .some(a => (a.text || '').startsWith('posterior means of')));
    const first = map && (map._fullData || []).find(t => t.type === 'scatter' && t.x && t.x.length);
    const pts = first ? Array.from(first.x).slice(0, 3).map(v => v.toFixed(4)).join(',') : null;
    const last = log[log.length - 1];
    if (!last || last.text !== text || last.cap !== cap || last.pts !== pts)
      log.push({t: Math.round(performance.now() - t0), text, cap, pts});
  };
  new MutationObserver(snap).observe(document.body,
                                     {subtree: true, childList: true, characterData: true, attributes: true});
}"""

# A point of the map (data coordinates) as page coordinates, through Plotly's own axes.
TO_PAGE = """(gd, [x, y]) => { const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis;
                               const ya = gd._fullLayout.yaxis;
                               return [r.left + xa._offset + xa.l2p(x), r.top + ya._offset + ya.l2p(y)]; }"""


def url_of(base: str, name: str) -> str:
    """The address of page `name` on the server at `base` (the default page is the root)."""
    return f"{base}/{page_spec(name).url_path}"


# -- the server --------------------------------------------------------------------------------
def free_port() -> int:
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


@contextlib.contextmanager
def running_app(repo: Path, tmp: Path, env: dict[str, str] | None = None):
    """`streamlit run app.py` in `repo` on a free port with an empty runs folder in `tmp`; killed (its whole
    group) on exit. `env` adds to (or overrides) the server's environment."""
    runs = tmp / "runs"
    runs.mkdir()
    port = free_port()
    env = {**os.environ, "VAE_RUNS_DIR": str(runs), "OMP_NUM_THREADS": "1", **(env or {})}
    log_path = tmp / "streamlit.log"
    with open(log_path, "wb") as log:
        # As the README starts it: the shipped .streamlit/config.toml (no file watcher) applies.
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1"],
            cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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


# -- waiting for a page ------------------------------------------------------------------------
def open_page(page, app: App, name: str):
    """Load a page and wait until its script has run to the end (its closing expander is drawn)."""
    header, closing = DRAWN[name]
    page.goto(url_of(app.url, name))
    main = page.locator('[data-testid="stMain"]')
    done = main.locator('[data-testid="stExpander"]').filter(has_text=closing)
    if name == "train":  # with no runs yet the page stops before its expander
        done = done.or_(main.locator('[data-testid="stAlert"]').filter(has_text="No runs yet"))
    done.wait_for(timeout=90_000)
    heading = main.locator("h2").first.inner_text().strip()
    assert heading == header, f"{url_of(app.url, name)} shows {heading!r}, not the {header} page"
    return main


def form_field(main, label: str):
    """A text or number field of a form, by its label (the Train page's fields are either)."""
    return main.get_by_role("textbox", name=label, exact=True).or_(main.get_by_role("spinbutton", name=label,
                                                                                    exact=True))


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


def one_drawn(main, text: str, *, exact: bool = True, timeout: float = 30_000) -> None:
    """Exactly one element of the main area reads `text` (or, not `exact`, holds it), waiting for it first: a busy
    machine draws a page's later elements seconds after its figures (CI once looked too early)."""
    found = main.get_by_text(text, exact=exact)
    try:
        found.first.wait_for(timeout=timeout)
    except Exception:
        raise AssertionError(f"nothing reads {text!r}; the page reads: {main.inner_text()[:1500]}") from None
    assert found.count() == 1, f"{found.count()} elements read {text!r}"


def wait_for_images(page, at_least: int = 1) -> None:
    """`at_least` images in the main area, every one decoded (naturalWidth > 0)."""
    page.wait_for_function(
        """n => { const imgs = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img')];
                  return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        arg=at_least, timeout=60_000)


# -- screenshots for the README (bench/screenshots.sh) -------------------------------------------
def screenshot(page, name: str) -> None:
    """With VAE_SCREENSHOTS set, save the whole page as <name>.png there (Streamlit scrolls inside <main>,
    so the viewport is stretched to the content's height for the picture, then put back)."""
    folder = os.environ.get("VAE_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    height = max(VIEWPORT["height"], int(page.evaluate(
        "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")))
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # no focus ring
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.mouse.move(VIEWPORT["width"] - 5, height - 5)  # no hover label, no sidebar hover controls
    page.wait_for_timeout(800)  # Plotly relayouts on resize
    page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
    page.set_viewport_size(VIEWPORT)


def section_screenshot(page, name: str, heading) -> None:
    """With VAE_SCREENSHOTS set, save the viewport scrolled so that `heading` is at its top."""
    folder = os.environ.get("VAE_SCREENSHOTS")
    if folder:
        heading.evaluate("el => el.scrollIntoView({block: 'start'})")
        page.mouse.move(5, 5)
        page.wait_for_timeout(800)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


# The in-page clock of the interpolation slider: the browser test and bench/app.py both time the slider with it.
LATENCY_PROBE = """plot => {
  const href = () => { const i = plot.querySelector('g.hm image');
                       return i ? (i.getAttribute('href') || i.getAttribute('xlink:href')) : null; };
  const probe = window.__probe = {href, t0: null, last: href(), latencies: [], statusSeen: false};
  // the click starts the clock; the first change of the heatmap's image stops it (after the next frame)
  document.addEventListener('mousedown', () => { probe.t0 = performance.now(); probe.last = href(); }, true);
  new MutationObserver(() => {
    if (probe.t0 === null) return;
    const h = href();
    if (h && h !== probe.last) {
      const t0 = probe.t0; probe.t0 = null; probe.last = h;
      requestAnimationFrame(() => probe.latencies.push(performance.now() - t0));
    }
  }).observe(plot, {subtree: true, childList: true, attributes: true, attributeFilter: ['href', 'xlink:href']});
  // Streamlit's "Running..." widget appears only while the server runs the script
  new MutationObserver(() => {
    if (document.querySelector('[data-testid="stStatusWidget"]')) probe.statusSeen = true;
  }).observe(document.body, {subtree: true, childList: true});
}"""


def scroll_to(page, chart) -> None:
    """A chart scrolled into view on the settled page. A rerun that is still drawing can replace the chart's
    element under the test ("not attached to the DOM", seen once): the settled page's chart is looked up again."""
    for attempt in range(3):
        page.wait_for_function(SETTLED, timeout=60_000)
        try:
            chart.scroll_into_view_if_needed(timeout=10_000)
            break
        except Exception:
            if attempt == 2:
                raise
    page.wait_for_timeout(500)


def click_point(page, chart, point) -> None:
    """Click a map's point (data coordinates) as a user does: the chart in view, the pointer moved there first
    (Plotly picks on hover), then the click."""
    scroll_to(page, chart)
    x, y = chart.locator(".js-plotly-plot").evaluate(TO_PAGE, [float(point[0]), float(point[1])])
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)


# -- the 2-D map --------------------------------------------------------------------------------
def loneliest(z2, mnist5k) -> tuple[int, np.ndarray]:
    """The test image whose posterior mean is farthest from any other's: a click there can only pick it."""
    mu = posterior_stats(z2.model, mnist5k.x_test)[0].astype(np.float64)
    gaps = np.linalg.norm(mu[:, None] - mu[None], axis=-1) + np.eye(len(mu)) * 1e9
    row = int(gaps.min(1).argmax())
    return row, mu[row]
