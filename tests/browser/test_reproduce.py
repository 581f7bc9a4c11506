"""The Paper figures page in Chromium: reproductions in the runs folder are drawn as figure 2 (AEVB beside
wake-sleep, with the paper's values as markers on MNIST-like sets, and Frey Face's panel as a density) and
figure 4, and one started from the page's form trains and lands there."""
from __future__ import annotations

import pytest

from tests.browser.support import assert_no_errors, one_drawn, open_page, wait_for_images, wait_for_plots
from vae import reproduce as rp
from vae.config import ModelConfig
from vae.data import load_dataset
from vae.train import train_run

pytestmark = pytest.mark.browser

TRACE_NAMES = """() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
    .flatMap(gd => (gd._fullData || []).map(t => [t.name, t.x ? t.x.length : 0]))"""


def make_reproduction(runs, plan: rp.Plan) -> None:
    data = load_dataset(plan.dataset, data_dir=plan.data_dir)

    def train(spec, out):
        config = ModelConfig(image_shape=data.image_shape, **spec.model.to_dict())
        return train_run(out, data, config, spec.train, resume=spec.resume, threads=1)

    rp.run_plan(plan, runs, data, train=train)


Y_TITLES = """() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
    .map(gd => gd._fullLayout.yaxis.title.text)"""


def traces(page) -> dict[str, int]:
    """Every Plotly trace in the main area: its name and how many points it has."""
    return dict(page.evaluate(TRACE_NAMES))


def wait_for_trace(page, name: str, points: int, timeout: float) -> None:
    page.wait_for_function(f"([name, points]) => ({TRACE_NAMES})().some(([n, k]) => n === name && k === points)",
                           arg=[name, points], timeout=timeout)


def test_reproductions_in_the_runs_folder_are_drawn_beside_the_papers_values(page, app, frey_dir):
    make_reproduction(app.runs, rp.Plan("fig2", "digits", (2, 5), 3000, "paper", "dynamic", name="tiny"))
    make_reproduction(app.runs, rp.Plan("fig2", "digits", (2,), 3000, "paper", "dynamic", "wake-sleep",
                                        name="tiny-ws"))
    make_reproduction(app.runs, rp.Plan("fig2", "frey", (10,), 3000, "paper", data_dir=str(frey_dir),
                                        name="tiny-frey"))
    make_reproduction(app.runs, rp.Plan("fig4", "digits", (2,), 1500, "paper", "dynamic", name="tiny4"))
    main = open_page(page, app, "reproduce")
    wait_for_plots(page, 2)  # digits' panel, then Frey Face's
    wait_for_images(page, 1)  # figure 4: the decoded grid
    shown = traces(page)
    assert shown["Nz=2 test"] == 3 and shown["Nz=5 train"] == 3  # three epochs each
    assert shown["wake-sleep Nz=2 test"] == 3 and shown["wake-sleep Nz=2 train"] == 3  # the baseline, beside
    assert {"paper Nz=3", "paper Nz=20"} <= set(shown)
    assert shown["Nz=10 test"] == 2  # Frey Face: 3000 samples are two epochs of its training frames
    titles = page.evaluate(Y_TITLES)
    assert "per example" in titles[0] and "density" in titles[1], titles  # Frey's bound is a density
    for chip in ("tiny (aevb, paper preset, binarise: dynamic)", "tiny-ws (wake-sleep, paper preset, binarise: "
                 "dynamic)", "tiny-frey (aevb, paper preset, binarise: none)"):
        one_drawn(main, chip)  # each panel's chosen reproductions
    tables = main.locator('[data-testid="stDataFrame"]')
    tables.nth(1).wait_for()  # each panel's table is drawn just after its figure, and may land a moment later
    assert tables.count() == 2  # ours beside the paper's, per panel
    one_drawn(main, "tiny4: digits, aevb, paper preset, binarise dynamic", exact=False)  # figure 4
    assert_no_errors(page, app)


@pytest.mark.slow
def test_a_reproduction_started_from_the_form_trains_every_size(page, app):
    main = open_page(page, app, "reproduce")
    main.locator('[data-testid="stSelectbox"]').filter(has_text="Data set").click()
    page.get_by_role("option", name="digits", exact=True).click()
    slider = main.get_by_role("slider").first
    slider.focus()
    page.keyboard.press("Home")  # the smallest budget: 1e4 samples, 7 epochs of digits per size
    main.get_by_text("Expected time").filter(has_text="6 sizes").wait_for()
    main.get_by_role("button", name="Start reproduction").click()
    main.get_by_text("Nz = 3: started.").wait_for(timeout=60_000)
    main.get_by_text("Nz = 200: started, place").wait_for()
    name = "fig2-digits-paper-none"
    wait_for_trace(page, "Nz=200 test", 7, timeout=240_000)  # the last size, all 7 epochs, drawn while training
    for k in rp.PAPER_LATENT_DIMS:
        assert (app.runs / f"{name}-nz{k}" / "model.safetensors").is_file()
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"]')]
        .some(e => e.innerText.includes('fig4-digits-paper-none'))""", timeout=120_000)
    assert_no_errors(page, app)
