"""A Frey Face model in Chromium: its Latent space map is coloured by frame, with a colour bar titled "frame"."""
from __future__ import annotations

import pytest

from tests.browser.support import DRAWN, VIEWPORT, assert_no_errors, running_app, screenshot, url_of, wait_for_plots

pytestmark = pytest.mark.browser

RUN = "frey-z2"


@pytest.fixture(scope="module")
def frey_app(browser, repo, frey_dir, tmp_path_factory):
    """A server started as a user's would be for Frey Face ($VAE_DATA_DIR/frey/ holds the file), with a tiny Frey
    model trained into its runs folder."""
    from vae.config import ModelConfig, TrainConfig
    from vae.data import load_dataset
    from vae.train import train_run
    tmp = tmp_path_factory.mktemp("browser-frey")
    (tmp / "data").mkdir()
    (tmp / "data" / "frey").symlink_to(frey_dir)
    data = load_dataset("frey", data_dir=frey_dir)
    with running_app(repo, tmp, env={"VAE_DATA_DIR": str(tmp / "data")}) as server:
        train_run(server.runs / RUN, data, ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(32,),
                                                       likelihood="gaussian"), TrainConfig(epochs=2, lr=3e-3))
        yield server


@pytest.mark.slow
def test_the_frey_map_is_coloured_by_frame(browser, frey_app):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(f"{url_of(frey_app.url, 'latent_space')}?model=run:{RUN}")
        main = page.locator('[data-testid="stMain"]')
        main.locator('[data-testid="stExpander"]').filter(has_text=DRAWN["latent_space"][1]).wait_for(timeout=90_000)
        wait_for_plots(page)
        chart = main.locator("div.stPlotlyChart").first
        bar = chart.locator("g.colorbar").filter(has=page.locator("text", has_text="frame"))
        bar.wait_for(timeout=30_000)
        assert "200 test images" in chart.locator("text.gtitle").text_content()
        assert_no_errors(page, frey_app)
        screenshot(page, "frey-latent-space")
    finally:
        context.close()
