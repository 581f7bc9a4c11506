"""The ELBO anatomy page in Chromium: every stage is drawn for an image chosen each way (a typed index, a class, a
click on a point of the map, strokes on the canvas), and "New ε" moves z and the sample but never mu or sigma;
the numbers are read off the page as a reader sees them."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tests.browser.support import (
    SETTLED,
    assert_no_errors,
    click_point,
    loneliest,
    open_page,
    screenshot,
    wait_for_images,
    wait_for_plots,
)

pytestmark = pytest.mark.browser

MAIN = '[data-testid="stMain"]'


def stages(page) -> dict[str, str]:
    """The pipeline's printed vectors, {"μ": "(0.12, -1.30)", "σ": ..., "ε": ..., "z": ...}."""
    texts = page.locator(MAIN).locator('[data-testid="stCaptionContainer"]').all_inner_texts()
    found = (re.fullmatch(r"(μ|σ|ε|z) = (\(.*\))", t.strip()) for t in texts)
    return {m.group(1): m.group(2) for m in found if m}


def pictures(page) -> list[str]:
    """The pipeline's images in order (x, the decoded mean, the sample): their sources name their bytes."""
    return page.locator(MAIN).locator('[data-testid="stImage"] img').evaluate_all("els => els.map(e => e.src)")


def wait_for_image_named(page, text: str) -> None:
    """Every stage drawn for the image the first picture's caption names ("test image 42", "your drawing")."""
    page.locator(MAIN).locator('[data-testid="stImage"]').first.filter(has_text=text).wait_for(timeout=60_000)
    page.wait_for_function(SETTLED, timeout=60_000)
    wait_for_images(page, 3)
    wait_for_plots(page, 4)  # q(z|x) against the prior, the KL, the pixels, the estimators
    assert set(stages(page)) == {"μ", "σ", "ε", "z"}
    assert page.locator(MAIN).get_by_text("ELBO for this ε").count() == 1
    assert page.locator(MAIN).locator('[data-testid="stTable"] tbody tr').count() == 3  # A, B and the IW bound
    assert_no_errors(page, page.app)


def choose_way(page, label: str) -> None:
    page.locator(MAIN).get_by_role("radiogroup").first.get_by_text(label, exact=True).click()


def draw_a_one(page) -> None:
    """A slanted '1' in one stroke on the canvas."""
    box = page.locator(MAIN).locator('canvas[aria-label^="Drawing canvas"]').bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.55 * w, y + 0.15 * h)
    page.mouse.down()
    page.mouse.move(x + 0.45 * w, y + 0.85 * h, steps=20)
    page.mouse.up()


@pytest.mark.slow
def test_the_anatomy_page_draws_every_stage_for_an_image_chosen_each_way_and_new_eps_moves_only_z(
        page, app, z2, mnist5k):
    page.app = app
    main = open_page(page, app, "anatomy")
    wait_for_image_named(page, "test image 0")

    # by index
    box = main.get_by_label("Test image index")
    box.fill("42")
    box.press("Enter")
    wait_for_image_named(page, "test image 42")
    assert "image=42" in page.url and "way=index" in page.url

    # New ε: z, ε and the sample move; x, mu and sigma stay
    before, shown = stages(page), pictures(page)
    main.get_by_role("button", name="New ε").click()
    main.get_by_text("ε draw 1", exact=True).wait_for()
    wait_for_image_named(page, "test image 42")
    after, now = stages(page), pictures(page)
    assert (after["μ"], after["σ"]) == (before["μ"], before["σ"])
    assert after["z"] != before["z"] and after["ε"] != before["ε"]
    assert now[0] == shown[0] and now[2] != shown[2]
    assert "eps=1" in page.url
    screenshot(page, "anatomy")  # for the README: a test digit's anatomy

    # by class: the fifth 3 of the test set
    choose_way(page, "By class")
    main.get_by_role("combobox", name="Class").click()
    page.get_by_role("option", name="3", exact=True).click()
    which = main.get_by_label("Which 3 (0 = first)")
    which.fill("4")
    which.press("Enter")
    row = int(np.flatnonzero(mnist5k.y_test == 3)[4])
    wait_for_image_named(page, f"test image {row} (a 3)")
    assert f"image={row}" in page.url and "way=class" in page.url

    # clicked on the map: the point farthest from any other, so that the click can only mean it
    choose_way(page, "On the map")
    chart = main.locator("div.stPlotlyChart").filter(has=page.locator("text.gtitle", has_text="Click a test image"))
    chart.wait_for()
    target, mu = loneliest(z2, mnist5k)
    click_point(page, chart, mu)
    wait_for_image_named(page, f"test image {target} ")
    shown_mu = [float(v) for v in stages(page)["μ"].strip("()").split(", ")]
    assert np.allclose(shown_mu, mu, atol=2e-3)  # the 2-D map's point is the posterior mean itself
    assert f"image={target}" in page.url and "way=map" in page.url

    # drawn on the canvas
    choose_way(page, "Drawn")
    main.get_by_text("Draw a digit on the canvas").wait_for()
    draw_a_one(page)
    wait_for_image_named(page, "your drawing")
    assert main.get_by_text("A drawing cannot travel in a link").is_visible()
    assert "way=draw" in page.url and "image=" not in page.url
    before = stages(page)
    main.get_by_role("button", name="New ε").click()
    main.get_by_text("ε draw 2", exact=True).wait_for()
    wait_for_image_named(page, "your drawing")
    after = stages(page)
    assert (after["μ"], after["σ"]) == (before["μ"], before["σ"]) and after["z"] != before["z"]
