"""Section 5's weight decay, "a prior p(theta) = N(0, I)" added to the objective: the loss a step descends
changes by exactly the prior's negative log density scaled to a per-image loss, (weight / N) * sum(theta^2) / 2
(its constant left out), its gradient by exactly (weight / N) * theta, and the recorded bound not at all."""
import pytest
import torch

from vae.config import ModelConfig, TrainConfig
from vae.model import build_model, parameter_prior_loss
from vae.train import Trainer


@pytest.fixture(scope="module")
def batch(digits):
    x = torch.tensor(digits.x_train[:50], dtype=torch.float32)
    eps = torch.randn((1, 50, 2), generator=torch.Generator().manual_seed(0))
    return x, eps


def trainer(digits, **config) -> Trainer:
    model = build_model(ModelConfig(image_shape=digits.image_shape, latent_dim=2, hidden=(16,)), seed=3)
    return Trainer(model, digits, TrainConfig(**config))


def squares(model) -> torch.Tensor:
    return sum(p.detach().double().pow(2).sum() for p in model.parameters())


def test_the_prior_term_is_half_the_squared_parameters_times_the_weight_over_n(digits):
    model = trainer(digits).model
    for weight, n in ((1.0, 1000), (0.25, 7)):
        term = parameter_prior_loss(model.parameters(), weight, n)
        assert term.item() == pytest.approx(weight / n * 0.5 * squares(model).item(), rel=1e-6)


@pytest.mark.parametrize("weight", [1.0, 3.5])
def test_the_objective_changes_by_exactly_the_priors_log_density_scaled_by_one_over_n(digits, batch, weight):
    x, eps = batch
    plain, decayed = trainer(digits), trainer(digits, weight_decay=weight)
    n_train = digits.x_train.shape[0]
    loss0, elbo0, recon0, kl0 = plain.aevb_loss(x, eps)
    loss1, elbo1, recon1, kl1 = decayed.aevb_loss(x, eps)
    # -(weight / N) log N(theta; 0, I) = (weight / N) * 0.5 * sum theta^2 + (weight / N) * (P / 2) log 2 pi
    expected = weight / n_train * 0.5 * squares(plain.model).item()
    assert (loss1 - loss0).item() == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert torch.equal(elbo0, elbo1) and torch.equal(recon0, recon1) and torch.equal(kl0, kl1)  # the bound alone


def test_its_gradient_is_the_priors_gradient_weight_over_n_times_theta(digits, batch):
    x, eps = batch
    plain, decayed = trainer(digits), trainer(digits, weight_decay=2.0)
    n_train = digits.x_train.shape[0]
    grads = []
    for t in (plain, decayed):
        t.model.zero_grad()
        t.aevb_loss(x, eps)[0].backward()
        grads.append([p.grad.clone() for p in t.model.parameters()])
    for g0, g1, p in zip(*grads, plain.model.parameters(), strict=True):
        assert torch.allclose(g1 - g0, 2.0 / n_train * p.detach(), atol=1e-7)


def test_wake_sleep_puts_each_halfs_prior_on_its_own_phase_and_together_they_are_the_whole(digits):
    model = trainer(digits).model
    whole = parameter_prior_loss(model.parameters(), 1.0, 100)
    halves = parameter_prior_loss(model.decoder.parameters(), 1.0, 100) + \
        parameter_prior_loss(model.encoder.parameters(), 1.0, 100)
    assert halves.item() == pytest.approx(whole.item(), rel=1e-6)


def test_a_run_records_the_bound_not_the_bound_plus_the_prior_and_its_checkpoint_keeps_the_weight(tmp_path, digits):
    from vae.checkpoint import load_checkpoint
    from vae.runs import read_metrics
    from vae.train import train_run
    mc = ModelConfig(image_shape=digits.image_shape, latent_dim=2, hidden=(16,))
    for name, weight in (("plain", 0.0), ("decayed", 50.0)):
        result = train_run(tmp_path / name, digits, mc, TrainConfig(epochs=1, weight_decay=weight, seed=2, log_every=1))
        assert result.status == "finished"
    first, last = {}, {}
    for name in ("plain", "decayed"):
        steps = [r for r in read_metrics(tmp_path / name / "metrics.jsonl") if r["kind"] == "step"]
        first[name], last[name] = steps[0]["elbo"], steps[-1]["elbo"]
    assert first["plain"] == first["decayed"]  # step 1's record: the same weights, the same bound, no prior in it
    assert last["plain"] != last["decayed"]  # and the term did move the weights
    assert load_checkpoint(tmp_path / "decayed").train_config["weight_decay"] == 50.0
