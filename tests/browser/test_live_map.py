"""The Train page's live latent map in a real browser: a run started from the form shows its map forming, a new
frame drawn as each snapshot lands, while the progress line still says Training."""
from __future__ import annotations

import pytest

from tests.browser.support import LIVE_PROBE, assert_no_errors, form_field, open_page, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_NAME = "live-map-run"


def test_a_2d_run_started_from_the_form_shows_a_latent_map_that_changes_five_times_before_it_ends(page, app):
    main = open_page(page, app, "train")
    main.locator('[data-testid="stSelectbox"]').filter(has_text="Data set").click()
    page.get_by_role("option", name="mnist-5k", exact=True).click()

    form_field(main, "Latent size").fill("2")
    form_field(main, "Hidden widths").fill("64")
    form_field(main, "Epochs").fill("4")
    form_field(main, "Batch size").fill("2")  # 2,000 steps an epoch, a snapshot every 100: some 10-30 s
    form_field(main, "Run name").fill(RUN_NAME)
    page.evaluate(LIVE_PROBE)
    main.get_by_role("button", name="Start training").click()

    page.wait_for_function(
        """() => { const L = window.__livelog;
                   const i = L.findIndex(e => e.text && e.text.startsWith('Training'));
                   return i >= 0 && L.slice(i).some(e => e.text && e.text.startsWith('Finished')); }""",
        timeout=240_000)
    log = page.evaluate("() => window.__livelog")
    training = [e for e in log if e["text"] and e["text"].startswith("Training") and e["cap"] and e["pts"]]
    seen = list(dict.fromkeys(e["cap"] for e in training))
    drawn = list(dict.fromkeys(e["pts"] for e in training))
    print(f"{len(seen)} frames seen while training, {len(drawn)} distinct maps drawn:", seen[:3], "...", seen[-2:])
    assert len(seen) >= 5, f"the live map's caption changed {len(seen)} times while training: {seen}"
    assert len(drawn) >= 5, f"the map's points changed {len(drawn)} times while training"
    assert log[-1]["text"].startswith("Finished"), log[-1]

    # the finished run keeps showing its last frame: the end of the run, its test ELBO
    final = main.locator('[data-testid="stCaptionContainer"]').filter(has_text="Latent map at step 8,000 (epoch 4)")
    final.wait_for(timeout=30_000)
    assert "test ELBO" in final.inner_text()
    assert_no_errors(page, app)
    screenshot(page, "train")
