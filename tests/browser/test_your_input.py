"""The "Your input" page in Chromium: strokes drawn on the canvas with the mouse are encoded (the
reconstruction, the posterior star on the map and the out-of-distribution verdict appear), Clear
empties it, a second model can be added, an uploaded PNG works, and a read-only server keeps drawing
but disables uploads.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.browser.support import (
    SETTLED,
    VIEWPORT,
    assert_no_errors,
    open_page,
    running_app,
    screenshot,
    wait_for_images,
    wait_for_plots,
)
from ui.figures.maps import INPUT_NAME

pytestmark = pytest.mark.browser

MAIN = '[data-testid="stMain"]'
INK_ON_CANVAS = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                         let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }"""


def canvas(page):
    return page.locator(MAIN).locator('canvas[aria-label^="Drawing canvas"]')


def draw_seven(page) -> None:
    """A '7' in three mouse strokes' worth of moves: the bar, then the diagonal down to the bottom."""
    box = canvas(page).bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.28 * w, y + 0.22 * h)
    page.mouse.down()
    page.mouse.move(x + 0.72 * w, y + 0.22 * h, steps=12)
    page.mouse.move(x + 0.45 * w, y + 0.82 * h, steps=16)
    page.mouse.up()


def input_markers(page):
    """Legend entries naming the input's posterior on the maps: one per model that encoded it."""
    return page.locator(MAIN).locator(".stPlotlyChart .legendtext").filter(has_text=INPUT_NAME)


def verdicts(page):
    return page.locator(MAIN).locator('[data-testid="stAlert"]').filter(has_text="of test images")


def wait_until_encoded(page, models: int = 1) -> None:
    page.wait_for_function(SETTLED, timeout=60_000)
    input_markers(page).nth(models - 1).wait_for(timeout=60_000)
    verdicts(page).nth(models - 1).wait_for(timeout=60_000)
    wait_for_images(page, models)  # the prepared input beside its reconstruction, per model
    wait_for_plots(page, models)


@pytest.mark.slow
def test_drawing_with_the_mouse_encodes_the_digit_and_clear_empties_it(page, app):
    open_page(page, app, "your_input")
    wait_for_plots(page, 1)  # the map waits for an input
    assert input_markers(page).count() == 0
    draw_seven(page)
    wait_until_encoded(page)
    main = page.locator(MAIN)
    assert main.get_by_text("IW log-likelihood (K = 100)").is_visible()
    assert canvas(page).evaluate(INK_ON_CANVAS) > 500  # the strokes outlive the rerun they caused
    assert_no_errors(page, app)

    # a second model of the same image shape: two maps, two stars, two verdicts
    main.get_by_role("combobox", name="Also encode with").click()
    page.get_by_role("option", name="Bundled: mnist-5k-z16", exact=True).click()
    wait_until_encoded(page, models=2)
    assert main.locator("h3").filter(has_text="Bundled: mnist-5k-z16").count() == 1
    assert main.locator(".stPlotlyChart .gtitle").filter(has_text="(PCA)").count() == 1
    assert_no_errors(page, app)
    screenshot(page, "your-input")  # for the README: a drawn 7 on two models

    main.get_by_role("button", name="Clear").click()
    main.get_by_text("Draw a digit on the canvas").wait_for(timeout=30_000)
    page.wait_for_function(SETTLED, timeout=30_000)
    assert input_markers(page).count() == 0 and verdicts(page).count() == 0
    assert canvas(page).evaluate(INK_ON_CANVAS) == 0
    assert_no_errors(page, app)


@pytest.mark.slow
def test_an_uploaded_png_of_a_test_digit_is_typical(page, app, tmp_path, mnist5k):
    digit = mnist5k.x_test[0]
    big = Image.fromarray((255 - digit * 255).astype(np.uint8)).resize((140, 140), Image.BILINEAR)
    path = tmp_path / "my-digit.png"
    big.save(path)  # dark ink on white paper, five times MNIST's size: the page must invert and shrink it

    open_page(page, app, "your_input")
    main = page.locator(MAIN)
    main.get_by_text("Upload a file").click()
    main.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(str(path))
    wait_until_encoded(page)
    assert "typical of the training data" in verdicts(page).first.inner_text()
    assert_no_errors(page, app)


def test_a_broken_upload_is_refused_in_one_sentence(page, app, tmp_path):
    path = tmp_path / "not-really.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    open_page(page, app, "your_input")
    main = page.locator(MAIN)
    main.get_by_text("Upload a file").click()
    main.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(str(path))
    error = main.locator('[data-testid="stAlertContentError"]')
    error.wait_for(timeout=30_000)
    assert "not-really.png is not a readable image" in error.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert input_markers(page).count() == 0


@pytest.mark.slow
def test_a_read_only_server_keeps_drawing_but_disables_uploads(browser, repo, tmp_path):
    with running_app(repo, tmp_path, env={"VAE_READ_ONLY": "1"}) as server:
        context = browser.new_context(viewport=VIEWPORT)
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        open_page(pg, server, "your_input")
        draw_seven(pg)
        wait_until_encoded(pg)
        pg.locator(MAIN).get_by_text("Upload a file").click()
        uploader = pg.locator(MAIN).locator('[data-testid="stFileUploader"]')
        uploader.wait_for()
        assert uploader.locator("button", has_text="Upload").is_disabled()
        assert uploader.locator('[data-testid="stFileUploaderDropzone"]').get_attribute("aria-disabled") == "true"
        assert pg.locator(MAIN).get_by_text("Uploads are turned off on this server").is_visible()
        assert_no_errors(pg, server)
        context.close()
