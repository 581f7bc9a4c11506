"""vae.inputs: a user's drawing or file made into the model's input (MNIST's preprocessing), and the
out-of-distribution score from its importance-weighted log-likelihood."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from ui.canvas import png_from_data_url
from vae.inputs import (
    MAX_SIDE,
    InputError,
    iw_log_likelihoods,
    map_with_input,
    ood_score,
    posterior_ellipse,
    prepare_input,
    read_image,
    reference_images,
    verdict,
)

K = 50  # importance samples: enough to separate digits from noise, cheap on one thread


def centre_of_mass(image):
    rows, cols = np.indices(image.shape)
    return (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()


def png_bytes(pixels: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8), mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model(z16):
    return z16.model


@pytest.fixture(scope="module")
def reference(mnist5k, model):
    return iw_log_likelihoods(model, reference_images(mnist5k.x_test, 200), K)


# -- preprocessing -------------------------------------------------------------------------------
def test_an_mnist_digit_comes_back_unchanged(mnist5k):
    x = mnist5k.x_test[0]
    assert np.abs(prepare_input(x, (28, 28)) - x).max() < 1e-6


def test_a_large_off_centre_dark_on_light_drawing_is_inverted_fitted_and_centred(mnist5k):
    digit = mnist5k.x_test[3]
    big = np.asarray(Image.fromarray(digit).resize((200, 200), Image.BILINEAR))
    sheet = np.ones((280, 400), np.float32)  # white paper, the digit drawn in black near the top right
    sheet[10:210, 180:380] = 1.0 - big
    x = prepare_input(sheet, (28, 28))
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert x[0].max() == 0 and x[:, 0].max() == 0  # light ink on black, as MNIST
    assert np.allclose(centre_of_mass(x), (14, 14), atol=0.6)
    rows, cols = np.flatnonzero(x.max(1) > 0.2), np.flatnonzero(x.max(0) > 0.2)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 20  # the 20x20 box
    assert np.abs(x - digit).mean() < 0.05  # and it is the same digit again


def test_a_wide_stroke_keeps_its_aspect_ratio():
    sheet = np.zeros((100, 100), np.float32)
    sheet[40:50, 10:90] = 1.0  # 80 wide, 10 tall
    x = prepare_input(sheet, (28, 28))
    rows, cols = np.flatnonzero(x.max(1) > 0.2), np.flatnonzero(x.max(0) > 0.2)
    assert cols[-1] - cols[0] + 1 == 20 and rows[-1] - rows[0] + 1 <= 4


def test_transparent_sheet_uses_the_alpha_channel_as_ink():
    rgba = np.zeros((50, 50, 4), np.float32)
    rgba[10:40, 20:30] = (0.0, 0.0, 0.0, 1.0)  # black ink on a transparent sheet: grey alone shows nothing
    x = prepare_input(rgba, (28, 28))
    assert x.max() == 1.0 and np.allclose(centre_of_mass(x), (14, 14), atol=0.6)


def test_other_shapes_fit_the_whole_frame():
    sheet = np.zeros((120, 120), np.float32)
    sheet[20:100, 50:70] = 1.0
    x = prepare_input(sheet, (8, 8))
    assert x.shape == (8, 8) and x.max(1).min() > 0  # the stroke spans every row, as scikit-learn's digits do


@pytest.mark.parametrize("sheet", [np.ones((280, 280), np.float32), np.zeros((28, 28), np.float32),
                                   np.full((60, 60, 4), 0.5, np.float32)])
def test_an_empty_drawing_is_refused(sheet):
    with pytest.raises(InputError, match="empty"):
        prepare_input(sheet, (28, 28))


def test_uploaded_png_and_npy_are_read(mnist5k):
    digit = mnist5k.x_test[5]
    assert np.abs(read_image(png_bytes(1 - digit), "digit.png") - (1 - digit)).max() <= 1 / 255 + 1e-6
    buffer = io.BytesIO()
    np.save(buffer, (digit * 255).astype(np.uint8))
    assert np.allclose(read_image(buffer.getvalue(), "digit.npy"), digit, atol=1 / 255)


def test_a_pickled_npy_is_refused_unopened():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickled"):
        read_image(buffer.getvalue(), "evil.npy")


@pytest.mark.parametrize("data, words", [
    (b"MZ\x90\x00 not an image", "not a PNG, JPEG or .npy"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a readable image"),
])
def test_unreadable_files_are_refused_in_one_sentence(data, words):
    with pytest.raises(InputError, match=words) as err:
        read_image(data, "thing.png")
    assert str(err.value).count(". ") == 0 and "thing.png" in str(err.value)


def test_a_huge_image_is_refused_before_it_is_decoded():
    buffer = io.BytesIO()
    Image.new("L", (MAX_SIDE + 1, 8)).save(buffer, format="PNG")
    with pytest.raises(InputError, match="at most"):
        read_image(buffer.getvalue(), "wide.png")


def test_canvas_data_url_is_checked():
    png = png_bytes(np.zeros((4, 4), np.float32))
    assert png_from_data_url("data:image/png;base64," + base64.b64encode(png).decode()) == png
    assert png_from_data_url(None) is None
    for bad in ("javascript:alert(1)", "data:image/png;base64,@@@"):
        with pytest.raises(InputError):
            png_from_data_url(bad)


# -- where it lands ----------------------------------------------------------------------------------
def test_posterior_lands_on_the_same_pca_map_as_the_test_set(mnist5k, model):
    from vae.metrics import posterior_stats
    mu, logvar = posterior_stats(model, mnist5k.x_test[:300])
    coords, centre, jacobian = map_with_input(mu, mu[7])
    assert np.allclose(centre, coords[7], atol=1e-4)  # a test image drawn again lands on its own point
    outline = posterior_ellipse(centre, jacobian, logvar[7])
    assert outline.shape == (60, 2) and np.allclose(outline.mean(0), centre, atol=0.05)
    assert 0 < np.ptp(outline[:, 0]) < np.ptp(coords[:, 0])


def test_a_2d_latent_is_its_own_map():
    mu = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    coords, centre, jacobian = map_with_input(mu, np.array([0.5, -1.0], np.float32))
    assert np.allclose(coords, mu) and np.allclose(centre, (0.5, -1.0)) and np.allclose(jacobian, np.eye(2))
    outline = posterior_ellipse(centre, jacobian, np.log([0.25, 1.0]))  # std 0.5 across, 1 up
    assert np.allclose(np.ptp(outline, axis=0), (1.0, 2.0), atol=0.01)


# -- out of distribution -----------------------------------------------------------------------------
def test_a_real_test_digit_scores_as_typical(mnist5k, model, reference):
    x = prepare_input(mnist5k.x_test[0], (28, 28))
    score = verdict(float(iw_log_likelihoods(model, x, K)[0]), reference, K)
    assert not score.unusual and score.percentile > 5 and "typical" in score.verdict


@pytest.mark.parametrize("odd", ["noise", "solid block"])
def test_noise_and_a_blank_ish_block_score_as_unusual(model, reference, odd):
    if odd == "noise":
        x = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    else:
        x = prepare_input(np.pad(np.ones((10, 10), np.float32), 9), (28, 28))  # a filled square, no digit
    score = verdict(float(iw_log_likelihoods(model, x, K)[0]), reference, K)
    assert score.unusual and score.percentile < 1
    assert score.verdict.startswith("lower than 99% of test images")


def test_ood_score_ranks_against_the_reference_with_the_same_k(mnist5k, model):
    reference_x = reference_images(mnist5k.x_test, 40)
    score = ood_score(model, mnist5k.x_test[1], reference_x, 10)
    assert score.k == 10 and score.n_reference == 40 and score.log_likelihood < 0
    again = ood_score(model, mnist5k.x_test[1], reference_x, 10)
    assert again == score  # seeded: the same verdict every time


def test_a_npy_header_claiming_a_huge_array_is_refused_before_anything_is_allocated():
    crafted = io.BytesIO()
    np.lib.format.write_array_header_1_0(crafted, {"descr": "|u1", "fortran_order": False,
                                                   "shape": (100_000_000, 100_000_000)})
    with pytest.raises(InputError):  # np.load would try to allocate 10 PB here
        read_image(crafted.getvalue() + b"\0" * 16, "claims.npy")
    honest = io.BytesIO()
    np.save(honest, np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="cut short"):
        read_image(honest.getvalue()[:-3], "short.npy")  # a header for 16 bytes, 13 present
