"""The AEVB loop: it learns, repeats exactly, resumes exactly, and stops cleanly on divergence."""
import threading

import pytest
import torch

from vae.checkpoint import load_checkpoint
from vae.config import ConfigError, ModelConfig, TrainConfig
from vae.runs import RunError, read_metrics
from vae.train import train_run


def model_config(data, **kw):
    return ModelConfig(image_shape=data.image_shape, latent_dim=kw.pop("latent_dim", 2), hidden=(128,), **kw)


def weights(path):
    return load_checkpoint(path).model.state_dict()


def test_a_few_epochs_raise_the_test_elbo(tmp_path, mnist5k):
    events = []
    result = train_run(tmp_path / "run", mnist5k, model_config(mnist5k), TrainConfig(epochs=3, batch_size=100),
                       callbacks=[events.append])
    tests = [r["elbo"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["split"] == "test"]
    assert result.status == "finished" and result.epochs == 3 and len(tests) == 3
    assert tests[-1] > tests[0] + 5  # nats: the bound rises
    assert -250 < result.test_elbo < -120
    assert {e.kind for e in events} == {"step", "epoch", "end"} and events[-1].progress == 1.0
    record = read_metrics(tmp_path / "run" / "metrics.jsonl")[0]
    assert {"step", "epoch", "split", "elbo", "recon", "kl", "seconds"} <= set(record)
    ck = load_checkpoint(tmp_path / "run")
    assert ck.dataset["name"] == "mnist-5k" and ck.summary["epochs"] == 3 and ck.history


def test_a_seeded_run_repeats_exactly(tmp_path, mnist5k):
    cfg = TrainConfig(epochs=1, seed=7, binarize="dynamic")
    train_run(tmp_path / "a", mnist5k, model_config(mnist5k), cfg)
    train_run(tmp_path / "b", mnist5k, model_config(mnist5k), cfg)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(tmp_path, mnist5k):
    mc = model_config(mnist5k)
    train_run(tmp_path / "straight", mnist5k, mc, TrainConfig(epochs=2, seed=3))
    train_run(tmp_path / "split", mnist5k, mc, TrainConfig(epochs=1, seed=3))
    result = train_run(tmp_path / "split", mnist5k, mc, TrainConfig(epochs=2, seed=3), resume=True)
    assert result.epochs == 2
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "split")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [r["step"] for r in read_metrics(tmp_path / "split" / "metrics.jsonl") if r["kind"] == "epoch"]
    assert steps == sorted(steps) and len(steps) == 4  # train+test for each of 2 epochs, no duplicates


def test_an_existing_run_is_refused_without_resume(tmp_path, mnist5k):
    train_run(tmp_path / "r", mnist5k, model_config(mnist5k), TrainConfig(epochs=1))
    with pytest.raises(RunError, match="--resume"):
        train_run(tmp_path / "r", mnist5k, model_config(mnist5k), TrainConfig(epochs=1))


def test_divergence_stops_with_a_reason_and_keeps_the_last_good_checkpoint(tmp_path, mnist5k):
    mc = model_config(mnist5k)
    train_run(tmp_path / "r", mnist5k, mc, TrainConfig(epochs=1))
    good = weights(tmp_path / "r")
    result = train_run(tmp_path / "r", mnist5k, mc, TrainConfig(epochs=3, lr=1e6), resume=True)
    assert result.status == "diverged" and "non-finite" in result.reason and "learning rate" in result.reason
    kept = weights(tmp_path / "r")
    assert all(torch.equal(good[k], kept[k]) for k in good)


def test_a_stop_request_ends_the_run_between_steps(tmp_path, mnist5k):
    stop = threading.Event()

    def stop_after_first_epoch(event):
        if event.kind == "epoch":
            stop.set()

    result = train_run(tmp_path / "r", mnist5k, model_config(mnist5k), TrainConfig(epochs=5),
                       callbacks=[stop_after_first_epoch], stop_event=stop)
    assert result.status == "stopped" and result.epochs == 1
    assert load_checkpoint(tmp_path / "r").summary["epochs"] == 1


@pytest.mark.parametrize("kw", [{"estimator": "A", "n_samples": 3}, {"binarize": "static"}, {"kl_warmup": 1.0},
                                {"optimizer": "adagrad", "lr": 0.02}])
def test_training_options_all_learn(tmp_path, mnist5k, kw):
    result = train_run(tmp_path / "r", mnist5k, model_config(mnist5k), TrainConfig(epochs=2, **kw))
    tests = [r["elbo"] for r in result.history if r["split"] == "test"]
    assert result.status == "finished" and tests[1] > tests[0]


def test_warmup_raises_beta_linearly(tmp_path, mnist5k):
    result = train_run(tmp_path / "r", mnist5k, model_config(mnist5k),
                       TrainConfig(epochs=2, kl_warmup=2.0, log_every=10))
    betas = [r["beta"] for r in result.history if r["kind"] == "step"]
    assert betas[0] < 0.2 and betas == sorted(betas) and betas[-1] == 1.0


def test_gaussian_decoder_and_conv_train(tmp_path, mnist5k, digits):
    result = train_run(tmp_path / "g", mnist5k, model_config(mnist5k, likelihood="gaussian", gaussian_std=0.1),
                       TrainConfig(epochs=1))
    assert result.status == "finished"
    conv = ModelConfig(image_shape=digits.image_shape, latent_dim=3, arch="conv", hidden=(32,))
    assert train_run(tmp_path / "c", digits, conv, TrainConfig(epochs=2)).status == "finished"


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"lr": -1.0}, {"batch_size": 0}, {"estimator": "C"}, {"beta": -1.0}])
def test_bad_training_config_is_refused(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_a_model_for_other_images_is_refused(tmp_path, mnist5k):
    with pytest.raises(ConfigError, match="expects"):
        train_run(tmp_path / "r", mnist5k, ModelConfig(image_shape=(8, 8)), TrainConfig(epochs=1))


def test_resume_from_another_devices_generator_state_goes_on(tmp_path, mnist5k):
    """A CUDA generator's state (16 bytes) cannot seed a CPU generator: resume reseeds instead of failing."""
    from vae.checkpoint import load_resume_state, save_resume_state
    mc = model_config(mnist5k)
    train_run(tmp_path / "r", mnist5k, mc, TrainConfig(epochs=1))
    state = load_resume_state(tmp_path / "r" / "resume.safetensors")
    class CudaLikeGenerator:  # a CUDA generator's state is 16 bytes; a CPU generator's is 5056
        def get_state(self):
            return torch.zeros(16, dtype=torch.uint8)

    foreign = CudaLikeGenerator()
    opt = torch.optim.Adam(state.model.parameters())
    opt.load_state_dict(state.optimizer_state)
    shuffle = torch.Generator()
    shuffle.set_state(state.generator_states["shuffle"])
    save_resume_state(tmp_path / "r" / "resume.safetensors", state.model, opt, step=state.step, epoch=state.epoch,
                      generators={"shuffle": shuffle, "noise": foreign}, train_config=state.train_config)
    result = train_run(tmp_path / "r", mnist5k, mc, TrainConfig(epochs=2), resume=True)
    assert result.status == "finished" and result.epochs == 2
