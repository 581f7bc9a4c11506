"""The app in a real browser: `streamlit run app.py` driven by headless Chromium through Playwright.

What AppTest cannot see is checked here: Plotly actually draws (SVG and WebGL), the interpolation
slider runs in the browser without asking the server, a lasso on the WebGL map reaches Python, and a
training run started from the form reports progress and lands in the sidebar.

Set VAE_SCREENSHOTS=<folder> to save one full-page PNG per page there (bench/screenshots.sh makes
the README's docs/screenshots/ this way).
"""
from __future__ import annotations

import itertools
import math
import statistics
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.support import (
    DRAWN,
    LATENCY_PROBE,
    VIEWPORT,
    assert_no_errors,
    form_field,
    open_page,
    running_app,
    screenshot,
    url_of,
    wait_for_images,
    wait_for_plots,
)
from ui.pages import PAGES

pytestmark = pytest.mark.browser

RUN_NAME = "browser-run"


# -- helpers -----------------------------------------------------------------------------------
def assert_sidebar(page) -> None:
    sidebar = page.locator('[data-testid="stSidebar"]')
    model = sidebar.get_by_role("combobox", name="Model", exact=True)
    model.wait_for()
    assert model.input_value() == "Bundled: mnist-5k-z2"  # the app opens on the 2-D bundled model
    download = sidebar.locator('[data-testid="stDownloadButton"]')
    assert download.inner_text().strip() == "Download checkpoint"
    assert download.locator("button").is_enabled()


# -- a. every page loads -----------------------------------------------------------------------
@pytest.mark.parametrize("name", [p.name for p in PAGES])
def test_page_loads_draws_and_shows_the_sidebar(page, app, name):
    main = open_page(page, app, name)
    if name == "samples":
        wait_for_images(page, 3)  # prior samples, the manifold grid, traversals
    elif name == "train":
        main.get_by_role("button", name="Start training").wait_for()
        if not list(app.runs.glob("*/model.safetensors")):
            assert main.get_by_text("No runs yet").is_visible()
    else:
        wait_for_plots(page, {"compare": 3}.get(name, 1))  # compare: curves and two maps
        if name == "interpolate":
            wait_for_images(page, 1)  # the whole path
    assert_no_errors(page, app)
    assert_sidebar(page)
    if name in ("samples", "compare"):  # the other pages are photographed in their interactive state below
        screenshot(page, name)


# -- b. the interpolation slider runs in the browser ------------------------------------------


def test_interpolation_slider_redraws_in_the_browser_without_a_rerun(page, app):
    main = open_page(page, app, "interpolate")
    wait_for_plots(page, 2)
    chart = main.locator("div.stPlotlyChart").filter(has=page.locator(".slider-container"))
    assert chart.count() == 1, "the frames figure should carry Plotly's own slider"
    plot = chart.locator(".js-plotly-plot")
    ticks = chart.locator("rect.slider-tick-rect")
    n = ticks.count()
    assert n == 16, f"the slider should have one step per frame (16 by default), found {n}"
    assert chart.locator("g.hm image").count() == 1, "the frame is drawn as a heatmap image"
    rail = chart.locator("rect.slider-rail-rect").bounding_box()
    current = chart.locator("g.slider-group > text.slider-label")

    page.wait_for_timeout(1000)  # let the page settle: no more messages from the first run
    assert any(kind == "received" for kind, _ in page.ws_frames), "the websocket recorder saw nothing"
    frames_before = len(page.ws_frames)
    plot.evaluate(LATENCY_PROBE)
    first = page.evaluate("() => window.__probe.href()")

    seen = {0: first}
    for k, step in enumerate([5, 10, 15, 3, 8, 12, 0, 14, 7]):
        before = page.evaluate("() => window.__probe.href()")
        box = ticks.nth(step).bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, rail["y"] + rail["height"] / 2)
        page.wait_for_function("k => window.__probe.latencies.length > k", arg=k, timeout=5000)
        after = page.evaluate("() => window.__probe.href()")
        assert after != before, f"moving the slider to step {step} did not change the image"
        assert current.text_content().strip() == f"t = {step / (n - 1):.2f}"
        if step in seen:
            assert after == seen[step], f"step {step} drew a different image the second time"
        seen[step] = after
    assert len(set(seen.values())) == len(seen), "every step along the path should decode to its own image"

    page.wait_for_timeout(1000)  # a rerun, had one been asked for, would have started by now
    during = page.ws_frames[frames_before:]
    assert not during, f"moving the slider talked to the server ({len(during)} websocket frames): it reran the script"
    assert not page.evaluate("() => window.__probe.statusSeen"), "Streamlit's running indicator appeared"

    latencies = page.evaluate("() => window.__probe.latencies")
    median = statistics.median(latencies)
    print(f"slider->image median {median:.1f} ms (min {min(latencies):.1f}, max {max(latencies):.1f}, "
          f"n = {len(latencies)})")
    assert max(latencies) < 2000, f"slider->image took {max(latencies):.0f} ms"
    assert_no_errors(page, app)
    screenshot(page, "interpolate")  # mid-path: t = 0.47

    # the control: a Streamlit widget does rerun the script, and the recorder above sees it
    frames_before = len(page.ws_frames)
    main.get_by_text("spherical", exact=True).click()
    deadline = time.monotonic() + 10
    while not any(kind == "sent" for kind, _ in page.ws_frames[frames_before:]):
        assert time.monotonic() < deadline, "a widget change sent nothing: the websocket recorder is blind"
        page.wait_for_timeout(100)


# -- c. a training run from the form ----------------------------------------------------------
TRAIN_PROBE = """() => {
  const log = window.__trainlog = [];
  const t0 = performance.now();
  const snap = () => {
    const prog = document.querySelector('[data-testid="stMain"] [data-testid="stProgress"]');
    const text = prog ? prog.innerText.trim() : null;
    let pts = null;  // points in the ELBO subplot (its traces live on axis x)
    for (const gd of document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')) {
      const traces = (gd._fullData || []).filter(t => t.xaxis === 'x' && t.x);
      if (traces.length) pts = traces.reduce((s, t) => s + t.x.length, 0);
    }
    const last = log[log.length - 1];
    if (!last || last.text !== text || last.pts !== pts) log.push({t: Math.round(performance.now() - t0), text, pts});
  };
  new MutationObserver(snap).observe(document.body,
                                     {subtree: true, childList: true, characterData: true, attributes: true});
}"""


@pytest.mark.slow
def test_training_from_the_form_reports_progress_and_adds_the_run(page, app):
    main = open_page(page, app, "train")
    main.locator('[data-testid="stSelectbox"]').filter(has_text="Data set").click()
    page.get_by_role("option", name="digits", exact=True).click()

    form_field(main, "Hidden widths").fill("32")
    form_field(main, "Epochs").fill("5")
    form_field(main, "Batch size").fill("2")  # 900 steps an epoch: seconds to watch the curves grow
    form_field(main, "Run name").fill(RUN_NAME)
    page.evaluate(TRAIN_PROBE)
    main.get_by_role("button", name="Start training").click()

    page.wait_for_function(
        """() => { const L = window.__trainlog;
                   const i = L.findIndex(e => e.text && /^(Training|Waiting)/.test(e.text));
                   return i >= 0 && L.slice(i).some(e => e.text && e.text.startsWith('Finished')); }""",
        timeout=120_000)
    log = page.evaluate("() => window.__trainlog")
    start = next(i for i, e in enumerate(log) if e["text"] and e["text"].startswith(("Training", "Waiting")))
    run = log[start:]
    texts = [e["text"] for e in run if e["text"]]
    print("progress:", " | ".join(dict.fromkeys(texts)))
    assert texts[-1].startswith("Finished"), texts
    pts = [e["pts"] for e in run if e["pts"] is not None]
    print("ELBO points:", list(dict.fromkeys(pts)))
    grew = any(b > a for a, b in itertools.pairwise(pts))
    training_texts = {t for t in texts if t.startswith("Training")}
    assert grew or len(training_texts) >= 2, f"neither the curves nor the progress moved while training: {run}"

    # once finished, the app reruns: the curves stay, with every epoch, and the run joins the sidebar
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
        .some(gd => (gd._fullData || []).some(t => t.name === 'test (epoch)' && t.x && t.x.length === 5))""",
                           timeout=30_000)
    assert (app.runs / RUN_NAME / "model.safetensors").is_file()
    model = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model", exact=True)
    option = page.get_by_role("option", name=f"Run: {RUN_NAME}", exact=True)
    for attempt in range(2):
        model.click()
        try:
            option.wait_for(timeout=10_000)
            break
        except Exception:
            if attempt:
                raise
            page.keyboard.press("Escape")
            open_page(page, app, "train")  # a reload reads the runs folder afresh
    page.keyboard.press("Escape")
    assert_no_errors(page, app)
    wait_for_plots(page, 2)  # the curves, and the live map of the last snapshot


# -- d. a lasso on the WebGL map ----------------------------------------------------------------
def test_lasso_on_the_webgl_map_shows_originals_and_reconstructions(page, app):
    main = open_page(page, app, "latent_space")
    wait_for_plots(page, 1)
    chart = main.locator("div.stPlotlyChart").first
    try:  # Plotly makes the WebGL canvas after the chart's SVG (what wait_for_plots sees): CI once looked between
        chart.locator(".gl-container canvas").first.wait_for(state="attached", timeout=30_000)
    except Exception:
        raise AssertionError("the map should be drawn with WebGL: no canvas in its .gl-container") from None
    assert chart.locator(".js-plotly-plot").evaluate("gd => gd._fullData[0].type") == "scattergl"
    assert main.locator('[data-testid="stImage"]').count() == 0

    drag = chart.locator(".nsewdrag").first.bounding_box()
    cx, cy = drag["x"] + drag["width"] / 2, drag["y"] + drag["height"] / 2
    r = min(drag["width"], drag["height"]) * 0.15
    page.mouse.move(cx + r, cy)  # the map's drag mode is lasso: draw a loop round the middle
    page.mouse.down()
    for k in range(1, 41):
        a = 2 * math.pi * k / 40
        page.mouse.move(cx + r * math.cos(a), cy + r * math.sin(a))
    page.mouse.up()

    heading = main.locator("h3").filter(has_text="originals (top) and reconstructions")
    heading.wait_for(timeout=60_000)
    count = int(heading.inner_text().split()[0])
    assert count >= 1, heading.inner_text()
    wait_for_images(page, 1)
    labels = main.get_by_text("Labels:")
    assert len(labels.inner_text().removeprefix("Labels:").split(",")) == min(count, 32)  # at most 32 shown
    assert_no_errors(page, app)
    screenshot(page, "latent-space")


# -- e. a deep link is the first request a fresh server sees -----------------------------------
@pytest.mark.slow
# (This is why the page files live in app_pages/: a folder named pages/ beside app.py put Streamlit in
# its legacy multipage mode until the first st.navigation() call of the process; tests/unit/test_architecture.py
# checks that no such folder is there.)
def test_a_deep_link_opened_first_on_a_fresh_server_runs_app_py(browser, repo, tmp_path):
    with running_app(repo, tmp_path) as server:
        context = browser.new_context(viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.goto(url_of(server.url, "samples"))
            main = page.locator('[data-testid="stMain"]')
            closing = main.locator('[data-testid="stExpander"]').filter(has_text=DRAWN["samples"][1])
            closing.wait_for(timeout=90_000)
            nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
            assert "Latent space" in nav and "app" not in nav.split(), f"navigation from file names: {nav!r}"
            model = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model")
            try:  # the page's end can be drawn a moment before a rerun (its link published) redraws the sidebar
                model.wait_for(timeout=30_000)
            except PlaywrightTimeout:
                pass
            assert model.count() == 1, "no Model selector: app.py did not run"
        finally:
            context.close()
