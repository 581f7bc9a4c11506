"""vae.anatomy: one image's ELBO stage by stage. The stages add up to the bound the trainer optimises (eq. 7 with
this eps), each follows its closed form, a new eps moves z and the sample but never q(z|x), and the estimators
beside it agree with one another and with the stages; Gaussian decoders too."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vae.anatomy import SHOWN_DIMS, anatomy, vector_text
from vae.config import ConfigError, ModelConfig
from vae.metrics import evaluate_elbo, posterior_stats
from vae.model import build_model, elbo_parts


@pytest.fixture(scope="module")
def image(mnist5k) -> np.ndarray:
    return mnist5k.x_test[42]


def tiny(likelihood: str = "bernoulli", latent_dim: int = 3, **extra):
    return build_model(ModelConfig(image_shape=(6, 5), latent_dim=latent_dim, hidden=(16,), likelihood=likelihood,
                                   **extra), seed=1)


GAUSSIANS = [("gaussian", {}), ("gaussian", {"gaussian_std": 0.1})]  # a learned sigma per pixel, and a fixed one


def test_the_stages_add_up_to_the_trainers_estimate_for_this_eps(z16, image):
    a = anatomy(z16.model, image, seed=3, n_samples=10, k=10)
    parts = elbo_parts(z16.model, torch.tensor(image)[None], estimator="B", eps=torch.tensor(a.eps)[None, None])
    assert a.recon == pytest.approx(parts.recon.item(), abs=1e-3)  # the pixels' sum is log p(x|z)
    assert a.kl == pytest.approx(parts.kl.item(), abs=1e-4)
    assert a.elbo == pytest.approx(parts.elbo.item(), abs=1e-3)
    assert a.elbo == pytest.approx(a.pixel_log_lik.sum() - a.kl_per_dim.sum(), abs=1e-9)
    assert a.pixel_log_lik.shape == image.shape and (a.pixel_log_lik <= 0).all()  # Bernoulli: probabilities


@pytest.mark.parametrize("likelihood,extra", [("bernoulli", {}), *GAUSSIANS])
def test_the_per_pixel_log_likelihood_sums_to_the_models_own(likelihood, extra):
    model = tiny(likelihood, **extra)
    x, z = torch.rand(4, 6, 5), torch.randn(2, 4, 3)
    torch.testing.assert_close(model.log_px_per_pixel(x, z).sum((-2, -1)), model.log_px_given_z(x, z),
                               rtol=1e-5, atol=1e-4)


def test_the_kl_of_each_dimension_is_appendix_b_and_the_posterior_is_the_encoders(z16, image):
    a = anatomy(z16.model, image, seed=0, n_samples=1, k=1)
    mu, logvar = posterior_stats(z16.model, image[None])
    np.testing.assert_allclose(a.mu, mu[0], rtol=1e-6)
    np.testing.assert_allclose(a.sigma, np.exp(0.5 * logvar[0]), rtol=1e-6)
    normal = torch.distributions.Normal
    q = normal(torch.tensor(a.mu, dtype=torch.float64), torch.tensor(a.sigma, dtype=torch.float64))
    reference = torch.distributions.kl_divergence(q, normal(0.0, 1.0)).numpy()
    np.testing.assert_allclose(a.kl_per_dim, reference, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.z, a.mu + a.sigma * a.eps, rtol=1e-6, atol=1e-7)  # section 2.4


def test_a_new_eps_moves_z_and_the_sample_but_not_mu_or_sigma_and_a_seed_repeats(z2, image):
    first, again, other = (anatomy(z2.model, image, seed=s, n_samples=20, k=10) for s in (5, 5, 6))
    for name in ("eps", "z", "sample", "decoded", "pixel_log_lik"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
        assert not np.array_equal(getattr(first, name), getattr(other, name)), name
    for name in ("x", "mu", "sigma", "kl_per_dim"):
        np.testing.assert_array_equal(getattr(first, name), getattr(other, name))
    assert first.estimates == again.estimates and first.estimates != other.estimates
    assert set(np.unique(first.sample)) <= {0.0, 1.0}  # a Bernoulli sample is binary


def test_estimators_a_and_b_are_vae_evals_and_agree_with_each_other_and_with_the_stages(z16, image):
    a = anatomy(z16.model, image, seed=2, n_samples=1000, k=10)
    x = torch.tensor(image)[None]
    for name in ("A", "B"):
        report = evaluate_elbo(z16.model, x, estimator=name, n_samples=1000, seed=2)
        e = a.estimate(name)
        assert (e.mean, e.se, e.samples) == (report["elbo"], report["elbo_se"], 1000)
        assert e.spread == pytest.approx(e.se * math.sqrt(1000))
    est_a, est_b = a.estimate("A"), a.estimate("B")
    assert abs(est_a.mean - est_b.mean) < 4 * math.hypot(est_a.se, est_b.se)  # two estimates of one bound
    # The one-draw ELBO of the stages, averaged over draws, is what B estimates with L draws.
    draws = np.array([anatomy(z16.model, image, seed=s, n_samples=1, k=1).elbo for s in range(200)])
    assert abs(draws.mean() - est_b.mean) < 4 * math.hypot(draws.std(ddof=1) / math.sqrt(len(draws)), est_b.se)
    assert draws.std(ddof=1) == pytest.approx(est_b.spread, rel=0.25)  # and they spread like B's single draws


def test_the_estimators_table_names_each_equation_and_rounds_to_the_standard_error(z2, image):
    rows = anatomy(z2.model, image, seed=0, n_samples=100, k=10).table()
    assert [(r["estimator"], r["samples"]) for r in rows] == [("A (eq. 6)", "L = 100"), ("B (eq. 7)", "L = 100"),
                                                              ("IW bound (Burda et al.)", "K = 10")]
    assert all(" ± " in r["estimate (nats)"] for r in rows)
    assert rows[2]["spread of one draw"] == "" and float(rows[1]["spread of one draw"]) > 0


def test_the_iw_bound_is_above_the_elbo(z16, image):
    a = anatomy(z16.model, image, seed=0, n_samples=1000, k=1000)
    iw, b = a.estimate("IW"), a.estimate("B")
    assert iw.samples == 1000 and iw.spread is None and iw.se > 0
    assert iw.mean > b.mean + 3 * math.hypot(iw.se, b.se), (iw, b)  # tighter (Burda et al.), clearly so at K = 1000
    one = anatomy(z16.model, image, seed=0, n_samples=1000, k=1).estimate("IW")  # K = 1 is the ELBO itself
    assert abs(one.mean - b.mean) < 4 * math.hypot(one.se, b.se)


@pytest.mark.parametrize("likelihood,extra", GAUSSIANS)
def test_a_gaussian_decoder_has_every_stage_and_a_grey_sample(likelihood, extra):
    model = tiny(likelihood, **extra)
    x = np.random.default_rng(0).random((6, 5), dtype=np.float32)
    a = anatomy(model, x, seed=1, n_samples=50, k=10)
    parts = elbo_parts(model, torch.tensor(x)[None], estimator="B", eps=torch.tensor(a.eps)[None, None])
    assert a.elbo == pytest.approx(parts.elbo.item(), rel=1e-5, abs=1e-4)
    assert a.sample.shape == x.shape and 0 <= a.sample.min() and a.sample.max() <= 1
    assert len(np.unique(a.sample)) > 2 and not np.allclose(a.sample, a.decoded)  # mean + sigma * noise
    if "gaussian_std" in extra:  # a fixed sigma of 0.1 around a mean in (0, 1): the noise's size shows it
        inside = (a.decoded > 0.3) & (a.decoded < 0.7)
        assert np.abs(a.sample - a.decoded)[inside].max() < 0.5
    assert {e.name for e in a.estimates} == {"A", "B", "IW"} and all(np.isfinite(e.mean) for e in a.estimates)


def test_a_large_latent_shows_the_dimensions_of_largest_kl():
    small = anatomy(tiny(), np.zeros((6, 5), np.float32), n_samples=1, k=1)
    np.testing.assert_array_equal(small.shown_dims(), [0, 1, 2])
    big = anatomy(tiny(latent_dim=40), np.zeros((6, 5), np.float32), n_samples=1, k=1)
    dims = big.shown_dims()
    assert len(dims) == SHOWN_DIMS and len(set(dims)) == SHOWN_DIMS
    assert big.kl_per_dim[dims].min() >= np.delete(big.kl_per_dim, dims).max()
    assert (np.diff(big.kl_per_dim[dims]) <= 0).all()  # largest first


@pytest.mark.parametrize("shape,n_samples,k,message", [
    ((5, 6), 1, 1, "the image is 5x6 but the model takes 6x5 images."),
    ((6, 5), 0, 1, "L must be between 1 and 1000, got 0."),
    ((6, 5), 1, 1001, "K must be between 1 and 1000, got 1001."),
])
def test_what_it_cannot_take_is_refused_in_one_sentence(shape, n_samples, k, message):
    with pytest.raises(ConfigError) as err:
        anatomy(tiny(), np.zeros(shape, np.float32), n_samples=n_samples, k=k)
    assert str(err.value) == message


def test_a_slow_decoder_is_given_fewer_samples_in_one_sentence():
    conv = build_model(ModelConfig(image_shape=(8, 8), latent_dim=2, arch="conv", hidden=(8,)))
    with pytest.raises(ConfigError, match=r"^L = 1000 and K = 1000 decode this conv model 10,000 times, over the "
                                          r"2,000 one view allows .*; lower L or K\.$"):
        anatomy(conv, np.zeros((8, 8), np.float32), n_samples=1000, k=1000)
    assert anatomy(conv, np.zeros((8, 8), np.float32), n_samples=100, k=100).estimate("IW").samples == 100
    assert anatomy(tiny(), np.zeros((6, 5), np.float32), n_samples=1000, k=1000).estimate("B").samples == 1000


def test_a_vector_is_printed_whole_when_short_and_counted_when_long():
    assert vector_text([0.12345, -1.3]) == "(0.123, -1.300)"
    assert vector_text(np.arange(10) / 10, limit=3, decimals=1) == "(0.0, 0.1, 0.2, …; 10 values)"
