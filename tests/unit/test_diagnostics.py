"""Diagnostics: the IW curve, collapse warnings, KL over training and the aggregate posterior."""
import numpy as np
import pytest

from vae.data import load_dataset
from vae.diagnostics import (
    aggregate_posterior,
    cached_iw_curve,
    collapse_warning,
    collapsed_dims,
    iw_curve,
    kl_history,
    marginal_density,
)
from vae.metrics import unit_activity


@pytest.fixture(scope="module")
def x_test(mnist5k):
    return mnist5k.x_test[:30]


def test_the_iw_curve_starts_at_the_elbo_and_rises_with_k(z16, x_test):
    curve = iw_curve(z16.model, x_test, ks=(1, 10, 100, 1000))
    assert curve.ks == [1, 10, 100, 1000] and curve.n_points == 30
    assert abs(curve.iw[0] - curve.elbo) < 4 * curve.iw_se[0] + 0.5  # K = 1 is an unbiased ELBO estimate
    assert curve.iw[1] > curve.iw[0] and curve.iw[3] > curve.iw[1]  # tighter with K (Burda et al.)
    assert 1.0 < curve.gap < 20.0  # nats: a real but modest posterior mismatch for this model
    assert curve.iw[-1] < 0  # still a bound on a log-probability


def test_the_iw_curve_is_cached_per_checkpoint(tmp_path, z16, x_test):
    first = cached_iw_curve(tmp_path, z16.sha256, z16.model, x_test[:5], ks=(1, 50))
    files = list((tmp_path / "cache" / z16.sha256).glob("iw-curve-*.json"))
    assert len(files) == 1
    assert cached_iw_curve(tmp_path, z16.sha256, None, x_test[:5], ks=(1, 50)) == first  # no model needed: cached
    files[0].write_text("{not json")
    assert cached_iw_curve(tmp_path, z16.sha256, z16.model, x_test[:5], ks=(1, 50)) == first  # damaged: recomputed


def test_the_compare_pages_iw_estimate_is_cached_and_a_wrong_file_is_recomputed(tmp_path, z16):
    from vae.compare import cached_iw_estimate, read_iw_estimate
    from vae.evaluate import evaluate_model
    from vae.storage import iw_estimate_path
    data = load_dataset("mnist-5k")
    assert read_iw_estimate(tmp_path, z16.sha256, 20, 10) is None  # nothing yet, and nothing computed
    value = cached_iw_estimate(tmp_path, z16, data, 20, 10)
    elbo = evaluate_model(z16, data, max_points=20)["test_elbo"]
    assert elbo < value["iw_log_likelihood"] < elbo + 15  # K = 10 tightens the bound a little
    assert read_iw_estimate(tmp_path, z16.sha256, 20, 10) == value
    path = iw_estimate_path(tmp_path, z16.sha256, 20, 10)
    for junk in ('"-80.0"', "{not json", "true"):  # a string, a damaged file, a bool: none is trusted
        path.write_text(junk)
        assert read_iw_estimate(tmp_path, z16.sha256, 20, 10) is None and not path.exists()
    path.write_text("[1, 2]")
    assert cached_iw_estimate(tmp_path, z16, data, 20, 10) == value  # recomputed, with the same seed


def test_collapse_is_named_in_plain_words():
    assert collapse_warning([0.5, 1.2]) is None
    partial = collapse_warning([0.5, 0.001, 2.0, 0.0])
    assert "2 of 4 latent dimensions have collapsed (z1, z3)" in partial
    assert collapse_warning([0.0, 0.002]).startswith("Posterior collapse")
    assert collapsed_dims(np.array([0.02, 0.009])) == [1]


def test_unit_activity_is_the_variance_of_posterior_means():
    mu = np.column_stack([np.linspace(-1, 1, 100), np.full(100, 0.3)])
    activity = unit_activity(mu)
    assert activity[0] > 0.3 and activity[1] < 1e-12


def test_kl_history_reads_the_test_records_that_carry_it():
    history = [{"split": "train", "epoch": 1, "kl": 3.0},
               {"split": "test", "epoch": 1, "kl_per_dim": [1.0, 0.0]},
               {"split": "test", "epoch": 2, "kl_per_dim": [2.0, 0.001]},
               {"split": "test", "epoch": 3}]  # an old record without it
    epochs, matrix = kl_history(history)
    assert list(epochs) == [1, 2] and matrix.shape == (2, 2) and matrix[1, 0] == 2.0
    assert kl_history([])[1].shape == (0, 0)


def test_an_aggregate_posterior_equal_to_the_prior_scores_zero():
    rng = np.random.default_rng(0)
    mu = rng.normal(scale=np.sqrt(0.5), size=(20000, 3))
    logvar = np.full_like(mu, np.log(0.5))  # Var(mu) + E[sigma^2] = 1
    agg = aggregate_posterior(mu, logvar)
    assert agg.kl_to_prior < 0.01 and np.allclose(agg.variance, 1, atol=0.05)
    shifted = aggregate_posterior(mu + 2, logvar)
    assert shifted.kl_to_prior == pytest.approx(0.5 * 3 * 4, rel=0.05)  # 1/2 |m|^2 for a shift of 2 in 3 dims
    grid = np.linspace(-8, 8, 801)
    assert np.trapezoid(marginal_density(mu, logvar, 0, grid), grid) == pytest.approx(1, abs=1e-3)
