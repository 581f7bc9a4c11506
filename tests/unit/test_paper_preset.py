"""The `paper` preset holds section 5's whole recipe: weight decay on, Adagrad's step size searched, and the
hidden size of the data set (500 for MNIST and the other 28x28 sets, 200 for Frey Face), resolved once in
vae.config.configs_from for the command line and the Train page alike; a step size given is the run's."""
import pytest

from vae.__main__ import _configs, build_parser
from vae.config import ConfigError, TrainConfig, configs_from, preset_settings


def parse_train(*flags):
    return build_parser().parse_args(["train", "--out", "/tmp/never-written", *flags])


def test_the_paper_preset_turns_on_the_weight_decay_and_the_step_size_search():
    _, train = configs_from("paper", {})
    assert (train.weight_decay, train.lr_search, train.optimizer, train.lr) == (1.0, True, "adagrad", 0.02)
    _, train = configs_from("default", {})
    assert (train.weight_decay, train.lr_search, train.algorithm) == (0.0, False, "aevb") and train == TrainConfig()


@pytest.mark.parametrize("dataset, hidden", [("frey", (200,)), ("mnist", (500,)), ("mnist-5k", (500,)),
                                             ("fashion-mnist", (500,)), ("my-faces.npz", (500,)), (None, (500,))])
def test_the_paper_presets_hidden_size_follows_the_data_set(dataset, hidden):
    model, _ = configs_from("paper", {}, dataset)
    assert model.hidden == hidden and preset_settings("paper", dataset)["model"]["hidden"] == hidden


def test_a_hidden_size_given_wins_and_the_default_preset_has_no_frey_size():
    assert configs_from("paper", {"hidden": (64,)}, "frey")[0].hidden == (64,)
    assert configs_from("default", {}, "frey")[0].hidden == (400,)


def test_the_command_line_knows_the_data_set_when_it_resolves_the_preset():
    _, model, train = _configs(parse_train("--preset", "paper", "--dataset", "frey"))
    assert model.hidden == (200,) and train.lr_search and train.weight_decay == 1.0
    _, model, _ = _configs(parse_train("--preset", "paper"))  # mnist-5k, the command line's default data set
    assert model.hidden == (500,)


def test_a_step_size_given_turns_the_presets_search_off_and_giving_both_is_refused():
    _, _, train = _configs(parse_train("--preset", "paper", "--lr", "0.05"))
    assert (train.lr, train.lr_search) == (0.05, False)
    _, _, train = _configs(parse_train("--preset", "paper", "--no-lr-search"))
    assert (train.lr, train.lr_search) == (0.02, False)
    _, _, train = _configs(parse_train("--lr-search"))  # any preset may search
    assert train.lr_search and train.optimizer == "adam"
    with pytest.raises(ConfigError, match="^a learning rate and a step-size search both choose the step size; "
                                          "give one of them.$"):
        _configs(parse_train("--preset", "paper", "--lr", "0.05", "--lr-search"))


def test_the_weight_decay_and_the_algorithm_are_options_of_any_run():
    _, _, train = _configs(parse_train("--preset", "paper", "--weight-decay", "0", "--algorithm", "wake-sleep"))
    assert (train.weight_decay, train.algorithm, train.lr_search) == (0.0, "wake-sleep", True)
    _, _, train = _configs(parse_train("--weight-decay", "2.5"))
    assert train.weight_decay == 2.5


def test_a_checkpoint_written_before_these_settings_reads_as_plain_aevb():
    old = {"epochs": 3, "batch_size": 100, "lr": 0.02, "optimizer": "adagrad", "estimator": "B", "n_samples": 1,
           "beta": 1.0, "kl_warmup": 0.0, "binarize": "none", "seed": 0, "log_every": 20}
    config = TrainConfig.from_dict(old)
    assert (config.algorithm, config.weight_decay, config.lr_search, config.lr) == ("aevb", 0.0, False, 0.02)
