"""Numbers with their error bars: the rounding rule, and standard errors that match repeated estimates."""
import json

import numpy as np
import pytest
import torch

from vae.compare import cached_iw_estimate, read_iw_estimate
from vae.evaluate import evaluate_model, evaluation_inputs
from vae.metrics import evaluate_elbo, iw_estimate
from vae.model import elbo_parts
from vae.precision import FIXED_DECIMALS, format_bound, round_bound, se_decimals
from vae.storage import iw_estimate_path


@pytest.mark.parametrize("value, se, shown", [
    (-115.8127, 0.0412, "-115.81 ± 0.04"),   # leading digits 412: one significant digit
    (-115.8127, 0.14, "-115.81 ± 0.14"),     # 140: two
    (-115.8127, 0.354, "-115.81 ± 0.35"),    # 354: still two
    (-115.8127, 0.355, "-115.8 ± 0.4"),      # 355: one
    (-115.8127, 0.0096, "-115.813 ± 0.010"),  # 960 rounds up to 1000: two digits of the next decade
    (-110.9, 0.09996, "-110.90 ± 0.10"),     # rounds to 1000 as well
    (-163.7, 2.5, "-163.7 ± 2.5"),
    (-11234.0, 470.0, "-11200 ± 500"),       # an SE above 1: the value rounded to hundreds
    (-0.001, 0.04, "0.00 ± 0.04"),           # never "-0.00"
    (-167.39, None, "-167.4"),               # no SE: FIXED_DECIMALS
    (-167.39, 0.0, "-167.4"),                # a zero SE says nothing about the digits either
    (-167.39, float("nan"), "-167.4"),
])
def test_a_bound_shows_no_more_digits_than_its_error_allows(value, se, shown):
    assert format_bound(value, se) == shown
    assert format_bound(value, se, "nats") == shown + " nats"


def test_json_values_are_rounded_to_the_standard_errors_place():
    assert round_bound(-115.8127, 0.0412) == (-115.81, 0.04)
    assert round_bound(-115.8127, 0.14) == (-115.81, 0.14)
    assert round_bound(-167.39, None) == (round(-167.39, FIXED_DECIMALS), None)
    assert se_decimals(0.04) == 2 and se_decimals(25.0) == 0 and se_decimals(470.0) == -2
    assert format_bound(float("nan"), 0.1) == "n/a"


def test_eval_reports_the_elbo_with_a_standard_error_that_repeats_bear_out(z16, mnist5k):
    first = evaluate_model(z16, mnist5k, max_points=200)
    assert first["test_elbo_se"] > 0 and first["elbo_draws"] >= 2
    assert evaluate_model(z16, mnist5k, max_points=200) == first  # seeded: the same file, the same number
    assert round(first["test_elbo"], se_decimals(first["test_elbo_se"])) == first["test_elbo"]  # no digit past the SE's
    repeats = [evaluate_model(z16, mnist5k, max_points=200, seed=s)["test_elbo"] for s in range(1, 9)]
    spread = np.std(repeats, ddof=1)
    # 8 repeats estimate a spread to about +-25%; the spread over images (tens of nats / sqrt(200)) or one
    # draw's SE would be 20x and 4x off.
    assert 0.4 < spread / first["test_elbo_se"] < 2.5, (spread, first["test_elbo_se"], repeats)


def test_the_iw_estimates_standard_error_matches_repeats(z16, mnist5k):
    x = evaluation_inputs(z16, mnist5k)[:100]
    runs = [iw_estimate(z16.model, x, 20, seed=s) for s in range(8)]
    values = [r["iw_log_likelihood"] for r in runs]
    se = np.mean([r["iw_log_likelihood_se"] for r in runs])
    assert iw_estimate(z16.model, x, 20, seed=3) == runs[3]
    assert 0.4 < np.std(values, ddof=1) / se < 2.5, (values, se)
    one = [iw_estimate(z16.model, x, 1, seed=s) for s in range(8)]  # K = 1: two draws, an exact variance
    assert 0.4 < np.std([r["iw_log_likelihood"] for r in one], ddof=1) / np.mean(
        [r["iw_log_likelihood_se"] for r in one]) < 2.5


def test_the_draws_are_the_elbo_that_training_optimises(z16, mnist5k):
    """Eval's per-draw ELBO (one encoder pass for every draw) is vae.model.elbo_parts, for A and B."""
    x = evaluation_inputs(z16, mnist5k)[:50]
    for estimator in ("A", "B"):
        ours = evaluate_elbo(z16.model, x, estimator=estimator, n_samples=8, seed=5)
        with torch.no_grad():
            parts = elbo_parts(z16.model, x, estimator=estimator, n_samples=8,
                               generator=torch.Generator().manual_seed(5))
        assert ours["elbo"] == pytest.approx(parts.elbo.mean().item(), abs=1e-3)
        assert ours["kl"] == pytest.approx(parts.kl.mean().item(), abs=1e-3)
        assert (ours["kl_se"] == 0) == (estimator == "B")  # B's KL is analytic
    assert "elbo_se" not in evaluate_elbo(z16.model, x, n_samples=1)  # one draw: draws and images cannot be told apart


def test_the_compare_cache_keeps_the_standard_error_and_recomputes_an_old_plain_number(tmp_path, z16, mnist5k):
    estimate = cached_iw_estimate(tmp_path, z16, mnist5k, 20, 10)
    assert set(estimate) == {"iw_log_likelihood", "iw_log_likelihood_se"} and estimate["iw_log_likelihood_se"] > 0
    path = iw_estimate_path(tmp_path, z16.sha256, 20, 10)
    assert json.loads(path.read_text()) == estimate
    path.write_text("-80.5")  # what versions before the SE cached
    assert read_iw_estimate(tmp_path, z16.sha256, 20, 10) is None and not path.exists()
    assert cached_iw_estimate(tmp_path, z16, mnist5k, 20, 10) == estimate  # recomputed, the same seed
