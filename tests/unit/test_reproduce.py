"""Reproducing the paper's figures 2 and 4: the plan, resumable runs, the series read back, the command line."""
import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from vae import reproduce as rp
from vae.config import ConfigError, ModelConfig
from vae.jobs import JobRegistry
from vae.runs import RunDir, RunError, list_runs
from vae.train import train_run

TINY = dict(dataset="digits", latent_dims=(2, 3), budget=3000, preset="paper", binarize="none")


def train_with(data, calls=None):
    """What the command line passes to run_plan: train_run on the loaded data, one thread."""
    def train(spec, out):
        if calls is not None:
            calls.append(spec)
        config = ModelConfig(image_shape=data.image_shape, **spec.model.to_dict())
        return train_run(out, data, config, spec.train, resume=spec.resume, threads=1)
    return train


@pytest.fixture(scope="module")
def made(tmp_path_factory, digits):
    """A tiny figure-2 reproduction on digits: Nz = 2 and 3, 3000 samples (3 epochs of 1,438 images)."""
    root = tmp_path_factory.mktemp("repro")
    plan = rp.Plan("fig2", **TINY)
    rp.run_plan(plan, root, digits, train=train_with(digits))
    return root, plan


# -- the plan ---------------------------------------------------------------------------------------
def test_budget_becomes_whole_epochs_that_reach_it():
    plan = rp.Plan(budget=1e6)
    assert plan.epochs(60_000) == 17  # 16 epochs are 960,000 samples, short of the budget
    assert rp.Plan(budget=1e7).epochs(60_000) == 167
    assert rp.Plan(budget=10).epochs(60_000) == 1
    assert plan.latent_dims == rp.PAPER_LATENT_DIMS and plan.name == "fig2-mnist-paper-none"


def test_the_paper_preset_trains_the_papers_network():
    plan = rp.Plan(preset="paper", binarize="dynamic")
    model, train = plan.model_settings(20), plan.train_config(60_000)
    assert model["hidden"] == (500,) and model["activation"] == "tanh" and model["init_std"] == 0.01
    assert model["latent_dim"] == 20 and model["likelihood"] == "bernoulli"
    assert (train.optimizer, train.lr, train.batch_size, train.n_samples) == ("adagrad", 0.02, 100, 1)
    assert train.binarize == "dynamic" and train.epochs == 167
    assert rp.Plan(preset="default").train_config(60_000).optimizer == "adam"


@pytest.mark.parametrize("kwargs, words", [
    (dict(budget=0), "budget"),
    (dict(dataset="my.npz"), "built-in data set"),
    (dict(figure="fig4", latent_dims=(1,)), "at least 2"),
    (dict(name="two words"), "name"),
    (dict(latent_dims=()), "latent sizes"),
])
def test_a_bad_plan_is_refused_in_one_sentence(kwargs, words):
    with pytest.raises(ConfigError, match=words) as err:
        rp.Plan(**kwargs)
    assert str(err.value).endswith(".") and "\n" not in str(err.value)


# -- running it ---------------------------------------------------------------------------------------
def test_each_latent_size_is_an_ordinary_run_the_app_lists(made):
    root, plan = made
    assert {r.name for r in list_runs(root)} == {"fig2-digits-paper-none-nz2", "fig2-digits-paper-none-nz3"}
    manifest = rp.list_reproductions(root)[0]
    assert manifest["name"] == plan.name and manifest["preset"] == "paper" and manifest["binarize"] == "none"
    assert manifest["sizes"]["3"] == {"run": "fig2-digits-paper-none-nz3", "budget": 3000.0, "epochs": 3}


def test_the_series_hold_train_and_test_per_epoch_against_samples_seen(made):
    root, plan = made
    series = rp.figure_series(root, rp.list_reproductions(root)[0])
    assert sorted((s.latent_dim, s.split) for s in series) == [(2, "test"), (2, "train"), (3, "test"), (3, "train")]
    for s in series:
        assert s.samples == [1500, 3000, 4500]  # 15 minibatches of 100 an epoch
        assert all(-200 < e < 0 for e in s.elbo)
        assert s.elbo[-1] > s.elbo[0]  # the bound rises while training
        assert s.at(2000) == s.elbo[1] and s.at(1e6) is None
    rows = list(csv.DictReader(io.StringIO((rp.reproduction_dir(root, plan.name) / rp.SERIES_CSV).read_text())))
    assert len(rows) == 12 and rows[0].keys() == {"latent_dim", "split", "samples", "elbo", "run"}


def test_the_comparison_puts_the_papers_read_off_values_beside_ours():
    series = [rp.Series(20, "test", "r", [500_000, 1_000_000], [-130.0, -120.0]),
              rp.Series(20, "train", "r", [500_000, 1_000_000], [-131.0, -121.0])]
    (row,) = rp.comparison(series)
    assert row["Nz"] == 20 and row["samples seen"] == 1_000_000 and row["test (last)"] == -120.0
    assert row["test at 1e6"] == -120.0 and row["train at 1e6"] == -121.0 and row["paper at 1e6"] == -126.0
    assert row["test at 1e7"] is None and row["paper at 1e7"] == -104.0 and row["paper at 2e8"] == -99.5


def test_running_the_plan_again_skips_finished_sizes_and_a_larger_budget_resumes(made, digits):
    root, plan = made
    calls = []
    rp.run_plan(plan, root, digits, train=train_with(digits, calls))
    assert calls == []  # both sizes already reached the budget
    bigger = rp.Plan("fig2", **{**TINY, "latent_dims": (3,), "budget": 6000})
    rp.run_plan(bigger, root, digits, train=train_with(digits, calls))
    assert [(c.run_name, c.resume, c.train.epochs) for c in calls] == [("fig2-digits-paper-none-nz3", True, 5)]
    series = {(s.latent_dim, s.split): s for s in rp.figure_series(root, rp.list_reproductions(root)[0])}
    assert len(series[3, "test"].samples) == 5 and len(series[2, "test"].samples) == 3


def test_a_size_stopped_inside_its_first_epoch_starts_again(tmp_path):
    plan = rp.Plan("fig2", **TINY)
    run = RunDir(tmp_path / plan.run_name(2))
    run.path.mkdir()
    run.metrics.write_text('{"step": 1, "split": "train", "kind": "step", "elbo": -500}\n')
    spec = rp.job_spec(tmp_path, plan, 2, 1438)
    assert spec is not None and not spec.resume and not run.metrics.exists()


def test_the_same_name_with_other_settings_is_refused(made):
    root, _ = made
    with pytest.raises(RunError, match="binarize 'none', not 'dynamic'"):
        rp.write_manifest(root, rp.Plan("fig2", **{**TINY, "binarize": "dynamic", "name": "fig2-digits-paper-none"}),
                          1438)


@pytest.mark.parametrize("text", ["{not json", '{"name": "x", "figure": "fig2", "sizes": {"3": {}}}', "[]",
                                  '{"name": "x", "figure": "fig2", "dataset": "mnist", "preset": "paper", '
                                  '"binarize": "none", "sizes": {"three": {"run": "x-nz3"}}}'])
def test_a_damaged_manifest_is_left_out_of_the_list(tmp_path, text):
    folder = rp.reproduction_dir(tmp_path, "x")
    folder.mkdir(parents=True)
    (folder / rp.MANIFEST).write_text(text)
    assert rp.list_reproductions(tmp_path) == []


def test_a_smaller_budget_later_does_not_shrink_the_record(tmp_path):
    rp.write_manifest(tmp_path, rp.Plan("fig2", **{**TINY, "budget": 6000}), 1438)
    manifest = rp.write_manifest(tmp_path, rp.Plan("fig2", **TINY), 1438)
    assert manifest["sizes"]["2"] == {"run": "fig2-digits-paper-none-nz2", "budget": 6000.0, "epochs": 5}


def test_the_app_submits_one_job_per_size_and_they_finish(tmp_path, digits):
    registry = JobRegistry(tmp_path, max_running=1, threads=1)
    plan = rp.Plan("fig2", **{**TINY, "budget": 1500})
    def submit(spec) -> int:
        return registry.submit(spec, "me").queue_position

    said = rp.submit_plan(plan, tmp_path, len(digits.x_train), submit=submit)
    assert said[0] == "Nz = 2: started." and said[1] == "Nz = 3: started, place 1 in the queue."
    for job in registry.jobs():
        assert registry.wait(job.id, 120).state == "finished"
    assert rp.submit_plan(plan, tmp_path, len(digits.x_train), submit=submit) == [
        "Nz = 2: already trained to the budget.", "Nz = 3: already trained to the budget."]


def test_the_manifold_picture_is_the_decoded_grid(made):
    from vae.checkpoint import load_checkpoint

    root, plan = made
    model = load_checkpoint(root / plan.run_name(2)).model
    picture = rp.manifold_picture(model, 5)
    assert picture.dtype == np.uint8 and picture.shape == (5 * 9 - 1, 5 * 9 - 1)  # 8x8 digits, 1-pixel gaps
    assert picture[8, :].min() == 255  # the gap between rows is white
    assert len({picture[r * 9:r * 9 + 8, c * 9:c * 9 + 8].tobytes() for r in range(5) for c in range(5)}) > 1


# -- the command line ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_fig2_writes_runs_csv_and_one_json_line_then_continues(tmp_path, vae_cli):
    args = ["reproduce", "fig2", "--dataset", "digits", "--latent-dims", "3", "5", "--budget", "1500",
            "--threads", "1", "--out", tmp_path]
    proc = vae_cli(*args)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["name"] == "fig2-digits-paper-none" and set(out["sizes"]) == {"3", "5"}
    assert out["sizes"]["5"]["status"] == "finished" and out["sizes"]["5"]["test_elbo"] < 0
    with open(out["csv"]) as f:
        assert {row["latent_dim"] for row in csv.DictReader(f)} == {"3", "5"}
    again = vae_cli(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["sizes"]["3"]["status"] == "already done"


@pytest.mark.slow
def test_cli_fig4_writes_the_manifold_png(tmp_path, vae_cli):
    proc = vae_cli("reproduce", "fig4", "--dataset", "digits", "--budget", "1500", "--grid", "6", "--threads", "1",
               "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out["sizes"]) == {"2"}
    with Image.open(out["png"]) as png:
        assert png.mode == "L" and png.size == (6 * 9 - 1, 6 * 9 - 1)


@pytest.mark.parametrize("args, words", [
    (["--budget", "lots"], "budget must be a number"),
    (["--budget", "0"], "budget must be between"),
    (["--dataset", "nowhere.npz"], "built-in data set"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, words, vae_cli):
    proc = vae_cli("reproduce", "fig2", "--out", tmp_path, *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]


def test_cli_help_explains_binarisation_and_the_layout(vae_cli):
    proc = vae_cli("reproduce", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "does not say how it binarised" in text and "<name>-nz<K>" in text and "2e8" in text
    # the help writes the plan's defaults out (so that it answers without importing torch): they must agree
    assert "default 1e7" in text and rp.DEFAULT_BUDGET == 1e7 == rp.Plan().budget
    assert "default: 3 5 10 20 200" in text and rp.Plan().latent_dims == (3, 5, 10, 20, 200)
    assert "2 5 10 20 for frey" in text and rp.Plan(dataset="frey").latent_dims == (2, 5, 10, 20)


@pytest.mark.slow
def test_full_mnist_one_epoch_per_size_on_the_paper_preset(tmp_path, mnist_dir, vae_cli):
    proc = vae_cli("reproduce", "fig2", "--dataset", "mnist", "--data-dir", mnist_dir, "--latent-dims", "3",
               "--budget", "60000", "--binarize", "dynamic", "--threads", "1", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    size = json.loads(proc.stdout.strip().splitlines()[-1])["sizes"]["3"]
    assert size["epochs"] == 1
    # An untrained decoder scores about -543 nats (784 pixels x log 2); one epoch of Adagrad gets far above it.
    assert -250 < size["test_elbo"] < -100


def test_a_manifest_naming_runs_outside_the_runs_folder_is_ignored(tmp_path):
    import json as _json

    from vae.reproduce import read_manifest
    good = {"name": "fig2-x", "figure": "fig2", "dataset": "digits", "preset": "paper", "binarize": "none",
            "sizes": {"2": {"run": "fig2-x-nz2"}}}
    path = tmp_path / "reproduce.json"
    path.write_text(_json.dumps(good))
    assert read_manifest(path)["sizes"]["2"]["run"] == "fig2-x-nz2"
    path.write_text(_json.dumps({**good, "sizes": {"2": {"run": "../../etc"}}}))
    assert read_manifest(path) == {}


# -- Frey Face and the wake-sleep baseline (issue 12) ------------------------------------------------
def test_a_frey_plan_trains_the_papers_frey_models():
    plan = rp.Plan(dataset="frey")
    assert plan.latent_dims == rp.FREY_LATENT_DIMS == (2, 5, 10, 20)  # figure 2's Frey Face panels
    model, train = plan.model_settings(10), plan.train_config(1765)
    assert model["hidden"] == (200,) and model["likelihood"] == "gaussian"  # appendix C.2, section 5's 200 units
    assert model["activation"] == "tanh" and (train.optimizer, train.batch_size, train.n_samples) == ("adagrad", 100, 1)
    assert rp.Plan(dataset="mnist").model_settings(10)["hidden"] == (500,)
    with pytest.raises(ConfigError, match="Gaussian decoder"):
        rp.Plan(dataset="frey", binarize="dynamic")


def test_a_wake_sleep_plan_is_its_own_reproduction_beside_aevbs():
    aevb, ws = rp.Plan(dataset="digits"), rp.Plan(dataset="digits", algorithm="wake-sleep")
    assert ws.name == aevb.name + "-wake-sleep" and aevb.name == "fig2-digits-paper-none"  # AEVB's names as before
    assert ws.train_config(1438).algorithm == "wake-sleep" and aevb.train_config(1438).algorithm == "aevb"
    assert ws.identity()["algorithm"] == "wake-sleep"
    with pytest.raises(ConfigError, match="algorithm must be one of"):
        rp.Plan(dataset="digits", algorithm="sleep-only")


def test_a_manifest_from_before_wake_sleep_reads_as_aevb(tmp_path):
    plan = rp.Plan(dataset="digits", latent_dims=(2,), budget=1000)
    rp.write_manifest(tmp_path, plan, 1438)
    path = rp.reproduction_dir(tmp_path, plan.name) / rp.MANIFEST
    old = json.loads(path.read_text())
    del old["algorithm"]
    path.write_text(json.dumps(old))
    assert rp.read_manifest(path)["algorithm"] == "aevb"
    rp.write_manifest(tmp_path, plan, 1438)  # and the same plan continues it


def test_the_comparison_keeps_the_algorithms_apart_and_the_papers_values_for_aevb():
    series = [rp.Series(20, "test", "a", [1_000_000], [-120.0]),
              rp.Series(20, "test", "w", [1_000_000], [-150.0], algorithm="wake-sleep")]
    rows = {r["algorithm"]: r for r in rp.comparison(series)}
    assert rows["aevb"]["test at 1e6"] == -120.0 and rows["aevb"]["paper at 1e6"] == -126.0
    assert rows["wake-sleep"]["test at 1e6"] == -150.0 and rows["wake-sleep"]["paper at 1e6"] is None
    assert rp.comparison(series, reference=())[0]["paper at 1e6"] is None  # Frey Face: none read off
