"""The Estimator lab in Chromium: it measures on open, and Run measures again with the form's settings."""
from __future__ import annotations

import pytest

from tests.browser.support import assert_no_errors, open_page, screenshot, wait_for_plots

pytestmark = pytest.mark.browser

LOG_AXES = """() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
                     .map(gd => [gd._fullLayout.xaxis.type, gd._fullLayout.yaxis.type, gd._fullData.length])"""


@pytest.mark.slow  # the page's default study runs on open: seconds alone, tens of seconds on a busy machine
def test_run_measures_with_the_forms_settings_and_draws_both_figures(page, app):
    main = open_page(page, app, "estimator_lab")
    wait_for_plots(page, 2)
    measured = main.locator('[data-testid="stMarkdownContainer"]').filter(has_text="Measured:")
    assert "B's gradient variance is" in measured.inner_text()
    assert main.get_by_text("16 repeats", exact=False).is_visible()  # the defaults ran on open
    before = measured.inner_text()
    screenshot(page, "estimator-lab")  # for the README: the default study on the bundled model

    main.get_by_label("Repeats (draws of the noise)").fill("4")
    main.get_by_label("Batch size (test images)").fill("8")
    main.get_by_label("Batch size (test images)").press("Tab")
    main.get_by_role("button", name="Run").click()
    main.get_by_text("8 test images, 4 repeats", exact=False).wait_for(timeout=60_000)
    # the cells arrive one L at a time from the background process: wait for the last of them
    main.get_by_text("Measuring in the background", exact=False).wait_for(state="detached", timeout=180_000)
    wait_for_plots(page, 2)

    after = measured.inner_text()
    assert "At L=1, B's gradient variance is" in after and after != before  # measured again, on 8 images
    # the previous run's charts linger while the new ones mount: wait until exactly the two remain
    page.wait_for_function(f"() => ({LOG_AXES})().length === 2", timeout=30_000)
    variance, elbo = page.evaluate(LOG_AXES)
    assert variance == ["log", "log", 9]  # all / encoder / decoder panels, each A, B and the 1/L line
    assert elbo[0] == "log" and elbo[2] == 2  # L on a log axis, one trace per estimator
    assert_no_errors(page, app)
