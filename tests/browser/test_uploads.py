"""Uploads through the sidebar's "Open a checkpoint (.safetensors)" uploader, in a real browser.

A pickle dressed up as .safetensors is refused unopened (its payload would create a marker file), a
`.pt` never gets past the uploader's type filter, broken files are refused in one sentence, and in every
case the app stays up on the model chosen before. A valid upload is selected and drawn, and it stays
private: another session (another browser context) never sees it, not even through a `?model=` link.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import time

import pytest

from tests import broken_files
from tests.browser.support import SETTLED, VIEWPORT, open_page, wait_for_images, wait_for_plots

pytestmark = pytest.mark.browser

DEFAULT_LABEL = "Bundled: mnist-5k-z2"
SIDEBAR = '[data-testid="stSidebar"]'


# -- helpers -----------------------------------------------------------------------------------
def model_box(page):
    return page.locator(SIDEBAR).get_by_role("combobox", name="Model", exact=True)


def open_default(page, app):
    """The Latent space page on the default model, drawn."""
    open_page(page, app, "latent_space")
    wait_for_plots(page, 1)
    assert model_box(page).input_value() == DEFAULT_LABEL


def choose(page, label: str) -> None:
    """Pick a model in the sidebar's selector and wait for the page to redraw with it."""
    model_box(page).click()
    page.get_by_role("option", name=label, exact=True).click()
    wait_for_model(page, label)
    page.locator('[data-testid="stMain"] [data-testid="stExpander"]').filter(has_text="What is this map?").wait_for()
    page.wait_for_function(SETTLED, timeout=30_000)
    wait_for_plots(page, 1)


def wait_for_model(page, label: str, timeout: float = 30) -> None:
    box, deadline = model_box(page), time.monotonic() + timeout
    while (value := box.input_value()) != label:
        assert time.monotonic() < deadline, f"the Model selector shows {value!r}, not {label!r}"
        page.wait_for_timeout(100)


def upload(page, path) -> None:
    page.locator(SIDEBAR).locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(str(path))


def sidebar_errors(page):
    return page.locator(SIDEBAR).locator('[data-testid="stAlert"]').filter(
        has=page.locator('[data-testid="stAlertContentError"]'))


def one_sentence(text: str) -> bool:
    """One sentence: ends with a full stop and has no sentence break inside ("torch.float32" is not one)."""
    text = text.strip()
    return text.endswith(".") and re.search(r"[.!?]\s+[A-Z]", text) is None and "\n" not in text


def refused(page, app, match: str, label: str = DEFAULT_LABEL, latent: int = 2) -> str:
    """Wait for the upload's refusal in the sidebar and for the rerun to finish; check that the app is
    still up on the model it had (`label`, with a `latent`-D latent), drawing its map, with no exception
    box. Returns the message."""
    errors = sidebar_errors(page)
    errors.first.wait_for(timeout=30_000)
    page.wait_for_function(SETTLED, timeout=30_000)
    texts = errors.all_inner_texts()
    assert len(texts) == 1, f"expected one error in the sidebar, got {texts}"
    message = texts[0].strip()
    assert re.search(match, message), f"{message!r} does not match {match!r}"
    assert one_sentence(message), f"not one sentence: {message!r}"
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"exception box: {exceptions.all_inner_texts()}\n{app.log_tail()}"
    assert model_box(page).input_value() == label, "a refused upload changed the model"
    main = page.locator('[data-testid="stMain"]')
    main.locator('[data-testid="stExpander"]').filter(has_text="What is this map?").wait_for(timeout=30_000)
    wait_for_plots(page, 1)
    assert f"latent {latent} " in page.locator(SIDEBAR).inner_text(), \
        f"the sidebar no longer describes the {latent}-D model"
    return message


# -- a pickle is refused unopened --------------------------------------------------------------
@pytest.mark.parametrize("build", [broken_files.raw_pickle, broken_files.torch_pickle], ids=["pickle", "torch-zip"])
def test_a_pickle_named_safetensors_is_refused_unopened(page, app, tmp_path, build):
    marker = tmp_path / "PWNED"
    evil = build(tmp_path, marker, name="evil.safetensors")
    open_default(page, app)
    upload(page, evil)
    message = refused(page, app, "pickle")
    assert message.startswith("evil.safetensors "), message
    assert not marker.exists(), "the upload's pickle payload ran"


def test_a_pt_file_is_refused_by_the_uploader_before_the_server_sees_it(page, app, tmp_path):
    marker = tmp_path / "PWNED"
    evil = broken_files.torch_pickle(tmp_path, marker, name="evil.pt")
    open_default(page, app)
    upload(page, evil)  # set_input_files ignores the input's accept=, as a drag and drop would
    chip = page.locator(SIDEBAR).locator('[data-testid="stFileChip"]').filter(has_text="evil.pt")
    chip.wait_for(timeout=10_000)
    assert chip.get_attribute("aria-invalid") == "true"
    assert "not allowed" in chip.inner_text(), chip.inner_text()
    page.wait_for_timeout(1500)  # a rerun, had the file reached the script, would have shown by now
    page.wait_for_function(SETTLED, timeout=30_000)
    assert sidebar_errors(page).count() == 0, sidebar_errors(page).all_inner_texts()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert model_box(page).input_value() == DEFAULT_LABEL
    wait_for_plots(page, 1)
    assert not marker.exists()


# -- broken files are refused in one sentence --------------------------------------------------
@pytest.mark.parametrize("case", ["truncated", "huge header", "wrong shape"])
def test_a_broken_checkpoint_is_refused_in_one_sentence(page, app, tmp_path, case):
    build, match = broken_files.BROKEN[case]
    path = build(tmp_path)
    open_default(page, app)
    choose(page, "Bundled: mnist-5k-z16")  # not the default: a refusal must keep this choice, not reset it
    upload(page, path)
    message = refused(page, app, match, "Bundled: mnist-5k-z16", 16)
    assert message.startswith(path.name), message


# -- a valid upload is chosen, drawn, and private ----------------------------------------------
def test_a_valid_upload_is_selected_drawn_and_private_to_its_session(page, app, browser, tmp_path, z16):
    path = tmp_path / "my-z16.safetensors"  # the bundled 16-D model under another name
    shutil.copyfile(z16.path, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    open_default(page, app)
    upload(page, path)
    label = f"Upload: {path.name}"
    wait_for_model(page, label)
    page.wait_for_function(SETTLED, timeout=30_000)
    assert model_box(page).input_value() == label
    sidebar = page.locator(SIDEBAR)
    assert "latent 16" in sidebar.inner_text()
    assert f"file {sha[:10]}" in sidebar.inner_text()
    assert sidebar_errors(page).count() == 0, sidebar_errors(page).all_inner_texts()
    main = page.locator('[data-testid="stMain"]')
    main.locator('[data-testid="stExpander"]').filter(has_text="What is this map?").wait_for(timeout=60_000)
    wait_for_plots(page, 1)  # a 16-D latent: the map is a projection (PCA by default)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "upload" not in page.url, f"an upload leaked into the link: {page.url}"
    # the upload goes with the session to another page (a click in the navigation: a reload is a new session)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Samples").click()
    main.locator('[data-testid="stExpander"]').filter(has_text="What are these pictures?").wait_for(timeout=60_000)
    page.wait_for_function(SETTLED, timeout=30_000)
    wait_for_images(page, 3)
    assert model_box(page).input_value() == label
    assert page.locator('[data-testid="stException"]').count() == 0

    other = browser.new_context(viewport=VIEWPORT)
    try:
        pg = other.new_page()
        pg.set_default_timeout(30_000)
        for link in ("", f"?model=upload:{sha}"):  # the plain app, and a hand-made link to the upload
            pg.goto(f"{app.url}/{link}")
            box = model_box(pg)
            box.wait_for(timeout=60_000)
            pg.wait_for_function(SETTLED, timeout=30_000)
            assert box.input_value() == DEFAULT_LABEL, f"{link or '/'}: {box.input_value()}"
            box.click()
            options = pg.get_by_role("option")
            options.first.wait_for()
            names = options.all_inner_texts()
            pg.keyboard.press("Escape")
            assert "Bundled: mnist-5k-z16" in names, names
            assert not [n for n in names if n.startswith("Upload")], f"another session sees an upload: {names}"
    finally:
        other.close()
    assert model_box(page).input_value() == label  # and the uploader's session still has it
