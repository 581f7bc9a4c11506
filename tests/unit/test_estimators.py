"""vae.estimators: gradient variance and ELBO spread of SGVB estimators A (eq. 6) and B (eq. 7) against L."""
import pytest
import torch

from vae.config import ConfigError
from vae.estimators import (
    check_study,
    estimator_study,
    study_batch,
    study_cell,
    summary_sentence,
    untrained_like,
    variance_slope,
)
from vae.evaluate import checkpoint_dataset

L_VALUES = (1, 4, 16)
REPEATS = 8


@pytest.fixture(scope="module")
def batch(z16):
    return study_batch(z16, checkpoint_dataset(z16), 16, seed=0)


@pytest.fixture(scope="module")
def rows(z16, batch):
    return estimator_study(z16.model, batch, l_values=L_VALUES, repeats=REPEATS, seed=0)


def row(rows, estimator, n_samples):
    return next(r for r in rows if r["estimator"] == estimator and r["L"] == n_samples)


def test_b_has_lower_gradient_variance_than_a_at_every_l(rows):
    for n in L_VALUES:
        a, b = row(rows, "A", n), row(rows, "B", n)
        assert b["grad_var"] < a["grad_var"] and b["grad_var_encoder"] < a["grad_var_encoder"], n
        # the same eps for both: the decoder never sees the KL term, so its gradient is the same draw for draw
        assert b["grad_var_decoder"] == pytest.approx(a["grad_var_decoder"], rel=1e-5)


def test_gradient_variance_and_elbo_spread_fall_about_like_one_over_l(rows):
    for e in ("A", "B"):
        assert -1.3 < variance_slope(rows, e) < -0.7
        assert row(rows, e, 16)["grad_var"] < row(rows, e, 1)["grad_var"] / 5
        assert row(rows, e, 16)["elbo_std"] < row(rows, e, 1)["elbo_std"] / 2
        assert row(rows, e, 16)["grad_snr"] > row(rows, e, 1)["grad_snr"]


def test_both_estimate_the_same_elbo(rows, z16):
    a, b = row(rows, "A", 16), row(rows, "B", 16)
    assert abs(a["elbo_mean"] - b["elbo_mean"]) < 1.0  # nats; each is unbiased for the same bound
    assert -200 < b["elbo_mean"] < -60  # the bundled z16 model's test ELBO is about -116


def test_at_initialisation_the_encoder_gradient_of_a_is_mostly_kl_noise(z16, batch):
    """The paper's reason for B, at its starkest: before training the decoder ignores z, so the encoder's
    gradient is the KL term alone, exact under B and sampled under A."""
    a, b = study_cell(untrained_like(z16.model_config), batch, 1, repeats=REPEATS)
    assert a["grad_var_encoder"] > 100 * b["grad_var_encoder"]


def test_the_model_is_left_untouched(z16, batch):
    model = z16.model
    model.requires_grad_(False)  # as the app shares it
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    study_cell(model, batch, 2, repeats=3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())
    assert torch.equal(rng, torch.get_rng_state())  # seeded with its own generator, never the global one


def test_the_same_seed_gives_the_same_numbers_whichever_other_l_are_studied(z16, batch, rows):
    again = study_cell(z16.model, batch, 4, repeats=REPEATS, seed=0)
    assert again == [row(rows, "A", 4), row(rows, "B", 4)]
    other = study_cell(z16.model, batch, 4, repeats=REPEATS, seed=1)
    assert other[0]["grad_var"] != again[0]["grad_var"]


def test_study_batch_is_seeded_and_its_size_is_checked(z16):
    data = checkpoint_dataset(z16)
    assert torch.equal(study_batch(z16, data, 8, 3), study_batch(z16, data, 8, 3))
    assert not torch.equal(study_batch(z16, data, 8, 3), study_batch(z16, data, 8, 4))
    with pytest.raises(ConfigError, match="batch size must be between 1 and 1000"):
        study_batch(z16, data, 1001)


@pytest.mark.parametrize("l_values, repeats, message", [
    ((), 8, "at least one value of L"), ((0, 4), 8, "every L must be between 1 and 1000"),
    ((1,), 1, "at least 2 repeats")])
def test_settings_it_cannot_run_with_are_refused_in_one_sentence(z16, batch, l_values, repeats, message):
    with pytest.raises(ConfigError, match=message):
        estimator_study(z16.model, batch, l_values=l_values, repeats=repeats)


def test_progress_is_reported_in_work_done(z16, batch):
    seen = []
    estimator_study(z16.model, batch, l_values=(3, 1), repeats=2, progress=seen.append)
    assert seen == [pytest.approx(0.25), pytest.approx(1.0)]  # L=1 first, then L=3: three times the work


def test_summary_sentence_reports_the_measured_ratio(rows):
    text = summary_sentence(rows)
    ratio = row(rows, "A", 1)["grad_var"] / row(rows, "B", 1)["grad_var"]
    assert text.startswith(f"At L=1, B's gradient variance is {ratio:.2f}x smaller than A's")
    slope = variance_slope(rows, "A")
    assert f"From L=1 to L=16 the gradient variance falls with a log-log slope of {slope:.2f} for A" in text


def test_settings_that_would_hold_a_shared_server_for_minutes_are_refused_in_one_sentence():
    check_study([1, 2, 100], 16, 32)  # the defaults' order of work is allowed
    with pytest.raises(ConfigError, match="decodes too many pixels"):
        check_study([100], 2, 10_000)  # [100, 10000, 784] logits: 3 GB
    with pytest.raises(ConfigError, match="over the 1,000,000 this lab allows"):
        check_study(list(range(1, 101)), 200, 32)
