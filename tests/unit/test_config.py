"""vae/config.py: every setting written once. The command line's `train` options are exactly its settings,
a preset fills only what was not given, bounds are refused in one sentence, and a JobSpec crosses to the
training process and back unchanged."""
import json
from pathlib import Path

import pytest

from vae.__main__ import _configs, build_parser
from vae.checkpoint import load_checkpoint
from vae.config import (
    PRESETS,
    TRAIN_COMMAND,
    ConfigError,
    ModelConfig,
    ModelSettings,
    RunSettings,
    TrainConfig,
    all_settings,
    configs_from,
    preset_values,
    train_settings,
)
from vae.job_process import job_line, read_job
from vae.job_spec import JobSpec

OWNERS = {"model": ModelSettings, "train": TrainConfig, "run": RunSettings}


def train_options() -> dict:
    """The `train` subcommand's argparse actions by destination (the help action left out)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(getattr(a, "choices", None), dict))
    return {a.dest: a for a in sub.choices["train"]._actions if a.dest != "help"}


def parse_train(*flags):
    return build_parser().parse_args(["train", "--out", "/tmp/never-written", *flags])


# -- the command line is the table ------------------------------------------------------------------------
def test_the_train_options_are_exactly_configs_settings_with_their_flags_defaults_and_choices():
    options = train_options()
    assert list(options) == [s.name for s in train_settings()] == list(TRAIN_COMMAND)
    for s in train_settings():
        action = options[s.name]
        negated = ["--no-" + s.flag[2:]] if s.kind is bool and s.preset_fills else []  # --no-lr-search
        assert action.option_strings == [s.flag, *negated] and action.help == s.help and action.required == s.required
        assert action.default == (False if s.kind is bool and not s.preset_fills else s.cli_default)
        assert tuple(action.choices or ()) == (() if s.also else s.choices), s.name


def test_the_command_lines_defaults_are_those_it_always_had():
    defaults = {s.flag: s.cli_default for s in train_settings() if s.kind is not bool}
    assert defaults == {
        "--dataset": "mnist-5k", "--data-dir": None, "--out": None, "--preset": "default", "--latent-dim": 2,
        "--epochs": 10, "--arch": None, "--hidden": None, "--activation": None, "--likelihood": "bernoulli",
        "--gaussian-std": None, "--binarize": "none", "--estimator": None, "--samples": None, "--beta": 1.0,
        "--kl-warmup": 0.0, "--batch-size": None, "--lr": None, "--optimizer": None, "--seed": 0,
        "--log-every": 20, "--snapshot-every": 100, "--threads": None, "--device": "cpu", "--algorithm": "aevb",
        "--weight-decay": None}
    assert {s.flag: s.choices for s in train_settings() if s.choices} == {
        "--preset": ("default", "paper"), "--arch": ("mlp", "conv"), "--activation": ("relu", "tanh"),
        "--likelihood": ("bernoulli", "gaussian"), "--binarize": ("none", "dynamic", "static"),
        "--estimator": ("A", "B"), "--optimizer": ("adam", "adagrad"), "--device": ("cpu", "auto", "cuda"),
        "--algorithm": ("aevb", "wake-sleep")}


def test_every_field_of_the_configs_is_a_setting_and_only_the_image_shape_and_init_std_lack_a_flag():
    every = all_settings()
    for group, cls in OWNERS.items():  # TrainConfig.changes records what a run's controls did: not a choice
        assert [n for n, s in every.items() if s.group == group] == [n for n in cls.__dataclass_fields__
                                                                      if n != "changes"]
    assert "image_shape" not in every and [n for n, s in every.items() if not s.flag] == ["init_std"]


def test_the_reproduce_options_it_shares_with_train_come_from_the_same_settings():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(getattr(a, "choices", None), dict))
    options = {a.dest: a for a in sub.choices["reproduce"]._actions}
    every = all_settings()
    for name in ("dataset", "data_dir", "preset", "binarize", "seed", "threads", "device"):
        assert options[name].option_strings == [every[name].flag]
        assert tuple(options[name].choices or ()) == (() if every[name].also else every[name].choices)
    assert (options["dataset"].default, options["preset"].default) == ("mnist", "paper")


# -- presets ------------------------------------------------------------------------------------------------
def test_every_value_a_preset_sets_is_a_setting_the_command_line_leaves_unset_by_default():
    every = all_settings()
    for preset in PRESETS.values():
        for group, values in preset.items():
            for name in values:
                assert every[name].group == group and every[name].cli_default is None, name


def test_a_preset_fills_only_what_the_command_line_did_not_give():
    run, model, train = _configs(parse_train("--preset", "paper", "--activation", "relu", "--lr", "0.5",
                                             "--latent-dim", "7"))
    assert (model.activation, model.hidden, model.init_std, model.latent_dim) == ("relu", (500,), 0.01, 7)
    assert (train.lr, train.optimizer, train.batch_size, train.estimator) == (0.5, "adagrad", 100, "B")
    assert run.preset == "paper" and run.out == "/tmp/never-written"
    _, model, train = _configs(parse_train())  # no flags: the default preset, then the dataclasses' defaults
    assert model == ModelSettings() and train == TrainConfig()


def test_choosing_a_preset_sets_its_values_and_resets_what_only_another_preset_sets():
    paper = preset_values("paper")
    assert paper == {"activation": "tanh", "arch": "mlp", "batch_size": 100, "estimator": "B", "hidden": (500,),
                     "init_std": 0.01, "lr": 0.02, "n_samples": 1, "optimizer": "adagrad", "weight_decay": 1.0,
                     "lr_search": True}
    default = preset_values("default")
    assert default["estimator"] == TrainConfig().estimator and default["init_std"] is None
    assert configs_from("default", default) == configs_from("default", {})  # what the page starts with


def test_an_unknown_preset_is_refused_in_one_sentence():
    with pytest.raises(ConfigError, match=r"^preset must be one of default, paper, got 'fast'\.$"):
        configs_from("fast", {})


# -- bounds: one record, checked by the configs and shown by the page ----------------------------------------
def edges(s):
    """(admitted, refused) values at each end of a setting's bound."""
    b, nudge = s.bound, (1 if s.kind in (int, tuple) else 0.5)
    cases = []
    if b.low is not None:
        cases.append((None if b.above else b.low, b.low if b.above else b.low - nudge))
    if b.high is not None:
        cases.append((b.high, b.high + nudge))
    if s.kind is tuple:
        cases = [(None if a is None else (a,), (r,)) for a, r in cases] + [(None, ())]
    return cases


BOUNDED = [s for s in all_settings().values() if s.bound is not None]


@pytest.mark.parametrize("s", BOUNDED, ids=[s.name for s in BOUNDED])
def test_a_value_past_a_bound_is_refused_in_one_sentence_and_the_edge_is_admitted(s):
    owner = OWNERS[s.group]
    for admitted, refused in edges(s):
        if admitted is not None:
            assert getattr(owner(**{s.name: admitted}), s.name) == admitted
        with pytest.raises(ConfigError) as err:
            owner(**{s.name: refused})
        message = str(err.value)
        assert message.startswith(f"{s.noun} must be ") and message.endswith(".") and "\n" not in message


@pytest.mark.parametrize("kwargs, message", [
    (dict(latent_dim=0), "latent size must be between 1 and 1024, got 0."),
    (dict(arch="rnn"), "architecture must be one of mlp, conv, got 'rnn'."),
    (dict(hidden=()), "hidden sizes must be one or more widths between 1 and 8192, got []."),
    (dict(gaussian_std=-1.0), "gaussian_std must be positive, got -1.0."),
    (dict(lr=0.0), "learning rate must be a positive number, got 0.0."),
    (dict(estimator="C"), "estimator must be A or B, got 'C'."),
    (dict(kl_warmup=-1.0), "KL warm-up must be zero or more epochs, got -1.0."),
    (dict(beta=float("nan")), "beta must be zero or positive, got nan."),
    (dict(log_every=0), "log_every must be at least 1, got 0."),
    (dict(weight_decay=-0.5), "weight decay must be zero or positive, got -0.5."),
    (dict(algorithm="em"), "algorithm must be one of aevb, wake-sleep, got 'em'."),
    (dict(device="tpu"), "device must be cpu, cuda or auto, got 'tpu'."),
    (dict(threads=0), "threads must be at least 1, got 0."),
])
def test_refusals_keep_the_sentences_users_have_seen(kwargs, message):
    owner = next(cls for cls in OWNERS.values() if set(kwargs) <= set(cls.__dataclass_fields__))
    with pytest.raises(ConfigError) as err:
        owner(**kwargs)
    assert str(err.value) == message


def test_a_device_may_name_one_gpu_of_several():
    assert RunSettings(device="cuda:1").device == "cuda:1"


def test_the_image_shape_checks_come_first_and_the_conv_check_last():
    with pytest.raises(ConfigError, match="image_shape must be"):
        ModelConfig(image_shape=(28,), latent_dim=0)
    with pytest.raises(ConfigError, match="latent size"):
        ModelConfig(image_shape=(30, 30), arch="conv", latent_dim=0)
    with pytest.raises(ConfigError, match="divisible by 4, got 30x30; use --arch mlp"):
        ModelConfig(image_shape=(30, 30), arch="conv")


# -- the checkpoint's dicts stay as they were ----------------------------------------------------------------
def test_a_model_configs_dict_keeps_the_key_order_checkpoints_store():
    config = ModelConfig(image_shape=(8, 8), hidden=(16, 8))
    assert list(config.to_dict()) == ["image_shape", "latent_dim", "arch", "hidden", "activation", "likelihood",
                                      "gaussian_std", "init_std"]
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.settings.with_image_shape((8, 8)) == config and "image_shape" not in config.settings.to_dict()
    with pytest.raises(ConfigError, match="unknown model config fields: depth"):
        ModelConfig.from_dict({**config.to_dict(), "depth": 3})


def test_the_bundled_checkpoints_still_load(bundled_asset):
    ck = load_checkpoint(bundled_asset)
    assert ModelConfig.from_dict(ck.model_config.to_dict()) == ck.model_config
    assert TrainConfig.from_dict(ck.train_config).to_dict().items() >= {
        k: v for k, v in ck.train_config.items() if k in TrainConfig.__dataclass_fields__}.items()


# -- the job line -------------------------------------------------------------------------------------------
def test_a_jobspec_round_trips_through_the_training_processs_json():
    spec = JobSpec(run_name="x", dataset="digits", data_dir="/data", device="auto", resume=True,
                   model=ModelSettings(latent_dim=3, hidden=(32, 16), activation="tanh", likelihood="gaussian",
                                       gaussian_std=0.2, init_std=0.01),
                   train=TrainConfig(epochs=3, optimizer="adagrad", n_samples=4, estimator="A", lr=0.02))
    line = job_line(spec, Path("/runs/x"), 1)
    sent = json.loads(line)
    assert isinstance(sent["model"], dict) and sent["model"]["hidden"] == [32, 16]  # plain JSON on the wire
    job = read_job(sent)
    assert job["out"] == "/runs/x" and job["threads"] == 1
    back = JobSpec(run_name="x", **{k: job[k] for k in ("dataset", "data_dir", "model", "train", "resume", "device")})
    assert back == spec


def test_a_jobspec_carries_typed_configs_and_a_checked_device():
    with pytest.raises(TypeError, match="ModelSettings"):
        JobSpec(run_name="x", dataset="digits", model={"latent_dim": 2}, train=TrainConfig())
    with pytest.raises(ConfigError, match="^device must be cpu, cuda or auto, got 'gpu'.$"):
        JobSpec(run_name="x", dataset="digits", model=ModelSettings(), train=TrainConfig(), device="gpu")
    from_checkpoint = JobSpec(run_name="x", dataset="digits", train=TrainConfig(),
                              model=ModelConfig(image_shape=(8, 8), latent_dim=5))
    assert from_checkpoint.model == ModelSettings(latent_dim=5)  # the data decides the image shape again


def test_a_line_without_a_device_trains_on_the_cpu():
    job = read_job({"dataset": "digits", "data_dir": None, "model": {"latent_dim": 2, "hidden": [8]},
                    "train": TrainConfig().to_dict(), "resume": False, "out": "/runs/x", "threads": 1})
    assert job["device"] == "cpu" and job["model"] == ModelSettings(latent_dim=2, hidden=(8,))
