"""The wake-sleep baseline (vae/wake_sleep.py): the wake phase moves the decoder alone, the sleep phase the
encoder alone; on mnist-5k its bound (estimator B, as AEVB's records) rises; a seeded run repeats exactly;
and `python -m vae train --algorithm wake-sleep` trains and records the algorithm in its checkpoint."""
import json

import pytest
import torch

from vae.checkpoint import load_checkpoint
from vae.config import ConfigError, ModelConfig, TrainConfig
from vae.distributed import DistContext
from vae.metrics import evaluate_elbo
from vae.model import build_model
from vae.train import Trainer, make_optimizer, train_run
from vae.wake_sleep import dream, sleep_update, wake_update

WAKE_SLEEP = TrainConfig(algorithm="wake-sleep", epochs=3, seed=2, log_every=10)


def model_config(data, **kw):
    return ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(64,), **kw)


def snapshot(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before: dict, module) -> set[str]:
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v.detach())}


@pytest.fixture(params=["adam", "adagrad"])
def setup(request, mnist5k):
    model = build_model(model_config(mnist5k), seed=1)
    optimizer = make_optimizer(model, TrainConfig(optimizer=request.param, lr=0.01))
    x = torch.tensor(mnist5k.x_train[:100], dtype=torch.float32)
    eps = torch.randn((1, 100, 2), generator=torch.Generator().manual_seed(0))
    return model, optimizer, x, eps


def test_the_wake_phase_moves_only_the_decoder(setup):
    model, optimizer, x, eps = setup
    enc, dec = snapshot(model.encoder), snapshot(model.decoder)
    parts = wake_update(model, optimizer, x, eps)
    assert parts is not None and parts.elbo.shape == (100,)
    assert changed(enc, model.encoder) == set()
    assert changed(dec, model.decoder) == set(dec)  # every decoder parameter moved


def test_the_sleep_phase_moves_only_the_encoder(setup):
    model, optimizer, x, _ = setup
    enc, dec = snapshot(model.encoder), snapshot(model.decoder)
    assert sleep_update(model, optimizer, 100, torch.Generator().manual_seed(1))
    assert changed(dec, model.decoder) == set()
    assert changed(enc, model.encoder) == set(enc)


def test_each_phase_after_the_other_still_moves_only_its_own_half(setup):
    model, optimizer, x, eps = setup  # the optimiser's state for one half must not push the other half
    wake_update(model, optimizer, x, eps)
    sleep_update(model, optimizer, 100, torch.Generator().manual_seed(1))
    enc, dec = snapshot(model.encoder), snapshot(model.decoder)
    wake_update(model, optimizer, x, eps)
    assert changed(enc, model.encoder) == set() and changed(dec, model.decoder) == set(dec)
    enc, dec = snapshot(model.encoder), snapshot(model.decoder)
    sleep_update(model, optimizer, 100, torch.Generator().manual_seed(2))
    assert changed(dec, model.decoder) == set() and changed(enc, model.encoder) == set(enc)


def test_dreams_are_drawn_from_the_decoders_own_likelihood(mnist5k):
    gen = torch.Generator().manual_seed(0)
    z, x = dream(build_model(model_config(mnist5k)), 8, gen)
    assert z.shape == (8, 2) and x.shape == (8, 28, 28) and set(x.unique().tolist()) <= {0.0, 1.0}  # Bernoulli
    z, x = dream(build_model(model_config(mnist5k, likelihood="gaussian")), 8, gen)
    assert x.shape == (8, 28, 28) and len(x.unique()) > 2  # a Gaussian draw, not its mean's binarisation


def test_on_mnist_5k_the_wake_sleep_bound_rises(tmp_path, mnist5k):
    mc = model_config(mnist5k)
    untrained = evaluate_elbo(build_model(mc, WAKE_SLEEP.seed), mnist5k.x_test, seed=WAKE_SLEEP.seed + 4)["elbo"]
    result = train_run(tmp_path / "ws", mnist5k, mc, WAKE_SLEEP)
    tests = [r["elbo"] for r in result.history if r["split"] == "test"]
    assert result.status == "finished" and len(tests) == 3
    assert tests[0] > untrained + 20 and tests[-1] > tests[0]  # nats: from epoch 0 to 1, and on to 3
    assert load_checkpoint(tmp_path / "ws").train_config["algorithm"] == "wake-sleep"


def test_a_seeded_wake_sleep_run_repeats_exactly(digits):
    def run():
        trainer = Trainer(build_model(model_config(digits), 4), digits,
                          TrainConfig(algorithm="wake-sleep", epochs=2, seed=4, log_every=3, binarize="dynamic",
                                      weight_decay=1.0))
        result = trainer.fit()
        return [{k: v for k, v in r.items() if k not in ("seconds", "threads")} for r in result.history], \
            trainer.model.state_dict()

    (records_a, weights_a), (records_b, weights_b) = run(), run()
    assert records_a == records_b and len(records_a) == 14
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_wake_sleep_is_refused_across_processes_in_one_sentence(digits):
    with pytest.raises(ConfigError, match=r"^wake-sleep trains in one process only; start it without torchrun\.$"):
        Trainer(build_model(model_config(digits)), digits, TrainConfig(algorithm="wake-sleep"),
                dist=DistContext(rank=0, world_size=2))


@pytest.mark.parametrize("kw", [dict(beta=0.5), dict(kl_warmup=2.0)])
def test_a_kl_weight_which_wake_sleep_would_ignore_is_refused_in_one_sentence(kw):
    with pytest.raises(ConfigError, match=r"^beta and the KL warm-up weigh AEVB's KL term, which wake-sleep does not "
                                          r"train; use beta 1 and no warm-up with it\.$"):
        TrainConfig(algorithm="wake-sleep", **kw)


def test_the_command_line_trains_wake_sleep_and_its_checkpoint_says_so(tmp_path, vae_cli):
    proc = vae_cli("train", "--algorithm", "wake-sleep", "--dataset", "digits", "--epochs", "1", "--hidden", "16",
                   "--threads", "1", "--out", tmp_path / "ws")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["epochs"] == 1 and summary["test_elbo"] < 0
    ck = load_checkpoint(tmp_path / "ws")
    assert ck.train_config["algorithm"] == "wake-sleep" and ck.summary["test_elbo"] == summary["test_elbo"]
