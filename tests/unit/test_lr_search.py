"""Adagrad's step size chosen as section 5 chose it (vae/lr_search.py): each candidate trains a few steps from the
same start, the best training ELBO wins, the choice repeats with the seed, the run then trains exactly as a run
given that step size, and the checkpoint keeps the choice and the scores (a resumed run keeps them too)."""
import json
import math

import pytest
import torch

import vae.lr_search as lr_search
from vae.checkpoint import load_checkpoint
from vae.config import ModelConfig, TrainConfig
from vae.lr_search import LrSearch, search_lr
from vae.runs import read_metrics
from vae.train import train_run

STEPS = 20  # the search's steps per candidate here (100 in a real run): digits has 15 steps an epoch


@pytest.fixture
def quick(monkeypatch):
    """A search of STEPS steps among (1e-6, 0.02): with Adam, 1e-6 barely moves in 20 steps, so 0.02 must win."""
    monkeypatch.setattr(lr_search, "LR_SEARCH_STEPS", STEPS)
    monkeypatch.setattr(lr_search, "LR_CANDIDATES", (1e-6, 0.02))


def model_config(data):
    return ModelConfig(image_shape=data.image_shape, latent_dim=2, hidden=(16,))


def numbers(path):
    """A run's records without their clock (seconds, threads)."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "threads")} for r in read_metrics(path)]


# -- the rule --------------------------------------------------------------------------------------------
def test_the_best_score_wins_a_tie_goes_to_the_smaller_step_and_a_diverged_one_never_wins():
    assert LrSearch({0.01: -120.0, 0.02: -110.0, 0.1: -115.0}, 100).chosen == 0.02
    assert LrSearch({0.01: -110.0, 0.02: -110.0}, 100).chosen == 0.01
    assert LrSearch({0.01: -300.0, 0.1: -math.inf}, 100).chosen == 0.01


def test_the_record_round_trips_through_json_with_a_diverged_candidate_as_null():
    search = LrSearch({0.01: -120.5, 0.02: -110.25, 0.1: -math.inf}, 100)
    data = json.loads(json.dumps(search.to_dict()))
    assert data == {"chosen": 0.02, "steps": 100, "scores": {"0.01": -120.5, "0.02": -110.25, "0.1": None}}
    assert LrSearch.from_dict(data) == search
    assert search.describe() == ("step size: 0.02 (mean training ELBO of 100 steps with 0.01 -> -120.5, "
                                 "0.02 -> -110.25, 0.1 -> diverged)")
    assert "0.1 -> -1.65771e+15" in LrSearch({0.02: -229.0, 0.1: -1657712130771016.0}, 100).describe()  # blown up


def test_the_search_scores_the_papers_three_candidates_with_the_same_number_of_steps():
    asked = []
    search = search_lr(lambda lr, steps: asked.append((lr, steps)) or -lr)
    assert asked == [(0.01, 100), (0.02, 100), (0.1, 100)] and search.chosen == 0.01


# -- in a run --------------------------------------------------------------------------------------------
def test_the_search_picks_the_candidate_that_trains_and_the_checkpoint_records_it(tmp_path, digits, quick):
    result = train_run(tmp_path / "r", digits, model_config(digits), TrainConfig(epochs=1, lr_search=True, seed=1))
    ck = load_checkpoint(tmp_path / "r")
    assert result.status == "finished"
    assert ck.train_config["lr"] == 0.02 and ck.train_config["lr_search"] is True
    found = ck.summary["lr_search"]
    assert found["chosen"] == 0.02 and found["steps"] == STEPS
    assert found["scores"]["0.02"] > found["scores"]["1e-06"] + 1  # nats


def test_a_seeded_search_repeats_exactly(tmp_path, digits, quick):
    cfg = TrainConfig(epochs=1, lr_search=True, seed=5, binarize="dynamic")
    for name in ("a", "b"):
        train_run(tmp_path / name, digits, model_config(digits), cfg)
    a, b = (load_checkpoint(tmp_path / name) for name in ("a", "b"))
    assert a.summary["lr_search"] == b.summary["lr_search"]
    assert all(torch.equal(a.model.state_dict()[k], b.model.state_dict()[k]) for k in a.model.state_dict())


def test_after_the_search_the_run_trains_exactly_as_a_run_given_the_chosen_step(tmp_path, digits, quick):
    cfg = TrainConfig(epochs=2, seed=3, log_every=4)
    train_run(tmp_path / "searched", digits, model_config(digits), TrainConfig(**{**cfg.to_dict(), "lr_search": True}))
    train_run(tmp_path / "given", digits, model_config(digits), TrainConfig(**{**cfg.to_dict(), "lr": 0.02}))
    assert numbers(tmp_path / "searched" / "metrics.jsonl") == numbers(tmp_path / "given" / "metrics.jsonl")


def test_a_resumed_run_keeps_the_step_size_and_the_scores_of_its_search(tmp_path, digits, quick, monkeypatch):
    mc = model_config(digits)
    train_run(tmp_path / "r", digits, mc, TrainConfig(epochs=1, lr_search=True, seed=1))
    before = load_checkpoint(tmp_path / "r").summary["lr_search"]

    def no_second_search(*args, **kwargs):
        raise AssertionError("a resumed run searched again")

    monkeypatch.setattr("vae.train.search_lr", no_second_search)
    # The preset's config comes back with its own lr (0.02 is the paper's); the run's choice wins.
    result = train_run(tmp_path / "r", digits, mc, TrainConfig(epochs=2, lr_search=True, seed=1, lr=0.5), resume=True)
    ck = load_checkpoint(tmp_path / "r")
    assert result.epochs == 2 and ck.train_config["lr"] == before["chosen"] == 0.02
    assert ck.summary["lr_search"] == before


def test_the_command_line_prints_the_choice_on_stderr(tmp_path, vae_cli):
    proc = vae_cli("train", "--dataset", "digits", "--preset", "paper", "--hidden", "16", "--epochs", "1",
                   "--threads", "1", "--out", tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    line = next(s for s in proc.stderr.splitlines() if s.startswith("step size: "))
    ck = load_checkpoint(tmp_path / "r")
    chosen = ck.summary["lr_search"]["chosen"]
    assert line.startswith(f"step size: {chosen:g} (mean training ELBO of 100 steps with 0.01 -> ")
    assert ck.train_config["lr"] == chosen and ck.train_config["weight_decay"] == 1.0
    assert json.loads(proc.stdout.strip().splitlines()[-1])["status"] == "finished"
