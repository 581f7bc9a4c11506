"""The maths of the model against trusted references (torch.distributions, Monte Carlo)."""
import itertools
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae.config import ConfigError, ModelConfig
from vae.model import VAE, elbo_parts, gaussian_kl_per_dim, iw_log_likelihood, log_normal


def small_model(**kw) -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(image_shape=(8, 8), latent_dim=kw.pop("latent_dim", 3), hidden=(32,), **kw))


def batch(n=16, seed=1):
    return torch.rand(n, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(50, 4), torch.randn(50, 4)
    ours = gaussian_kl_per_dim(mu, logvar)
    ref = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros(4), torch.ones(4)))
    torch.testing.assert_close(ours, ref)


def test_log_normal_matches_torch_distributions():
    z, mu, logvar = torch.randn(7, 5), torch.randn(7, 5), torch.randn(7, 5)
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(log_normal(z, mu, logvar), ref)


def test_reparameterised_samples_have_posterior_mean_and_variance():
    mu, logvar = torch.tensor([[1.5, -2.0]]), torch.tensor([[math.log(0.25), math.log(4.0)]])
    z = VAE.reparameterize(mu, logvar, 200_000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (200_000, 1, 2)
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(z.var(0), torch.exp(logvar), atol=0.05, rtol=0.02)


def test_reparameterisation_passes_gradients_to_mu_and_sigma():
    mu = torch.zeros(1, 2, requires_grad=True)
    logvar = torch.zeros(1, 2, requires_grad=True)
    VAE.reparameterize(mu, logvar, 4).pow(2).sum().backward()
    assert mu.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0


@pytest.mark.parametrize("likelihood,extra", [("bernoulli", {}), ("gaussian", {}), ("gaussian", {"gaussian_std": 0.1})])
def test_output_restores_the_input_shape(likelihood, extra):
    model = small_model(likelihood=likelihood, **extra)
    x = batch()
    assert model(x).shape == x.shape
    assert 0 <= model(x).min() and model(x).max() <= 1


def test_conv_architecture_round_trips_28x28_images():
    model = VAE(ModelConfig(image_shape=(28, 28), latent_dim=5, arch="conv", hidden=(64,)))
    x = torch.rand(3, 28, 28)
    assert model(x).shape == (3, 28, 28)
    assert elbo_parts(model, x).elbo.shape == (3,)


def test_conv_refuses_sides_not_divisible_by_four():
    with pytest.raises(ConfigError, match="divisible by 4"):
        ModelConfig(image_shape=(10, 10), arch="conv")


def test_bernoulli_log_likelihood_is_appendix_c1():
    model = small_model()
    x, z = batch(4), torch.randn(1, 4, 3)
    logits, _ = model.decode(z)
    y = torch.sigmoid(logits)
    ref = (x * torch.log(y) + (1 - x) * torch.log(1 - y)).flatten(-2).sum(-1)
    torch.testing.assert_close(model.log_px_given_z(x, z), ref, rtol=1e-4, atol=1e-3)


def test_estimator_b_parts_add_up_and_kl_is_analytic():
    model = small_model()
    parts = elbo_parts(model, batch(), estimator="B")
    torch.testing.assert_close(parts.elbo, parts.recon - parts.kl)
    torch.testing.assert_close(parts.kl, parts.kl_per_dim.sum(-1))
    assert (parts.kl >= 0).all() and (parts.elbo < 0).all()


def test_estimators_a_and_b_agree_in_expectation_and_b_has_lower_variance():
    model = small_model()
    with torch.no_grad():  # a posterior away from the prior, as after training (KL of a few nats)
        bias = model.encoder[-1][-1].bias
        bias[:3] += 1.5
        bias[3:] -= 3.0
    x = batch(4)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        a = torch.stack([elbo_parts(model, x, estimator="A", generator=gen).elbo for _ in range(4000)])
        b = torch.stack([elbo_parts(model, x, estimator="B", generator=gen).elbo for _ in range(4000)])
    # Means agree within a few standard errors; B's per-sample variance is lower (the paper's argument).
    stderr = (a.var(0) / a.shape[0] + b.var(0) / b.shape[0]).sqrt()
    assert ((a.mean(0) - b.mean(0)).abs() < 4 * stderr + 1e-3).all()
    assert (b.var(0) < a.var(0)).all()


def test_beta_weights_only_the_kl_term():
    model = small_model()
    x = batch()
    p1 = elbo_parts(model, x, beta=1.0, generator=torch.Generator().manual_seed(0))
    p0 = elbo_parts(model, x, beta=0.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(p0.loss, -p1.recon.mean())
    torch.testing.assert_close(p1.loss, -p1.elbo.mean())


def test_iwae_bound_is_above_the_elbo_and_rises_with_k():
    model = small_model(latent_dim=2)
    x = batch(32)
    with torch.no_grad():
        elbo = elbo_parts(model, x, estimator="B", n_samples=2000).elbo.mean().item()
    bounds = [iw_log_likelihood(model, x, k, generator=torch.Generator().manual_seed(k)).mean().item()
              for k in (1, 10, 100, 1000)]
    assert abs(bounds[0] - elbo) < 0.5  # K = 1 is the ELBO, up to Monte Carlo noise
    assert bounds[-1] >= elbo
    assert all(b2 >= b1 - 0.05 for b1, b2 in itertools.pairwise(bounds))
    assert all(b < 0 for b in bounds)


@pytest.mark.parametrize("per_chunk", [2, 8, 16])
def test_iwae_chunking_does_not_change_the_estimate(per_chunk):
    """Same seed, same K: drawn in chunks of `per_chunk` samples (a running logsumexp) or all at once, the
    bound is the same to float tolerance. (torch fills normal draws on the CPU 16 values at a time, so chunks
    of an even number of samples of this [8, 3] batch, 8 x 3 x per_chunk values each, draw exactly the z's
    that one draw of 2000 does; an odd chunk would draw others, and only Monte Carlo agreement could be asked.)"""
    model = small_model()
    x = batch(8)
    whole = iw_log_likelihood(model, x, 2000, generator=torch.Generator().manual_seed(0), max_elements=1 << 30)
    chunked = iw_log_likelihood(model, x, 2000, generator=torch.Generator().manual_seed(0),
                                max_elements=8 * 64 * per_chunk)  # 8 images of 64 pixels per sample
    assert torch.isfinite(chunked).all()
    torch.testing.assert_close(chunked, whole)  # float32's default tolerance: equal up to summation order
    other_seed = iw_log_likelihood(model, x, 2000, generator=torch.Generator().manual_seed(1), max_elements=1 << 30)
    with pytest.raises(AssertionError):  # the comparison above tells other draws apart
        torch.testing.assert_close(other_seed, whole)


def test_iwae_k_5000_fits_in_bounded_memory():
    model = VAE(ModelConfig(image_shape=(28, 28), latent_dim=20, hidden=(64,)))
    ll = iw_log_likelihood(model, torch.rand(4, 28, 28), 5000)
    assert ll.shape == (4,) and torch.isfinite(ll).all()


def test_paper_init_draws_every_parameter_with_std_001():
    model = VAE(ModelConfig(image_shape=(28, 28), latent_dim=20, hidden=(500,), activation="tanh", init_std=0.01))
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert abs(flat.std().item() - 0.01) < 5e-4 and abs(flat.mean().item()) < 5e-4


@pytest.mark.parametrize("bad", [{"latent_dim": 0}, {"arch": "rnn"}, {"hidden": ()}, {"likelihood": "poisson"},
                                 {"gaussian_std": -1.0}])
def test_bad_model_config_is_refused_with_one_sentence(bad):
    with pytest.raises(ConfigError) as err:
        ModelConfig(image_shape=(8, 8), **bad)
    assert str(err.value).endswith(".") and "\n" not in str(err.value)


def test_config_round_trips_through_a_dict():
    config = ModelConfig(image_shape=(28, 28), latent_dim=5, hidden=(64, 32))
    assert ModelConfig.from_dict(config.to_dict()) == config
