"""The command line, run as a user runs it: a subprocess, its stdout JSON and its exit code."""
import json

import pytest

from tests import broken_files as bf
from vae.precision import format_bound


def assert_one_line_error(proc, pattern):
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    assert pattern in lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, vae_cli):
    out = tmp_path_factory.mktemp("cli") / "run"
    proc = vae_cli("train", "--dataset", "mnist-5k", "--latent-dim", "2", "--epochs", "2", "--out", out,
               "--hidden", "128", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_ends_with_one_json_line_and_writes_the_run(trained):
    out, proc = trained
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"samples_per_s", "train_elbo", "test_elbo", "seconds"} <= set(summary)
    assert summary["samples_per_s"] > 0 and summary["test_elbo"] < 0
    assert (out / "model.safetensors").exists() and (out / "metrics.jsonl").exists()


def test_existing_out_is_refused_and_resume_reaches_the_total(trained, vae_cli):
    out, _ = trained
    assert_one_line_error(vae_cli("train", "--out", out, "--epochs", "2"), "--resume")
    proc = vae_cli("train", "--out", out, "--epochs", "3", "--resume", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["epochs"] == 3


def test_eval_json_reports_the_metrics(trained, vae_cli):
    out, _ = trained
    proc = vae_cli("eval", out, "--iw-samples", "20", "--max-points", "200", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["n_points"] == 200 and report["iw_samples"] == 20
    assert report["iw_log_likelihood"] >= report["test_elbo"] - 1.0
    assert 0 < report["test_elbo_se"] < 1 and 0 < report["iw_log_likelihood_se"] < 5  # each bound with its SE
    shown = vae_cli("eval", out, "--iw-samples", "20", "--max-points", "200")  # the same numbers, as text
    assert f"test_elbo: {format_bound(report['test_elbo'], report['test_elbo_se'])} nats" in shown.stdout
    assert f"iw_log_likelihood: {format_bound(report['iw_log_likelihood'], report['iw_log_likelihood_se'])} nats" \
        in shown.stdout
    assert len(report["kl_per_dim"]) == 2 and 0 <= report["active_units"] <= 2


def test_eval_refuses_a_pickle_without_running_it(tmp_path, vae_cli):
    marker = tmp_path / "pwned"
    assert_one_line_error(vae_cli("eval", bf.torch_pickle(tmp_path, marker)), "pickle")
    assert not marker.exists()


def test_eval_of_a_missing_file_is_one_line(tmp_path, vae_cli):
    assert_one_line_error(vae_cli("eval", tmp_path / "nope.safetensors"), "does not exist")


def test_train_with_bad_data_is_one_line(tmp_path, vae_cli):
    import numpy as np
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((20, 8, 8), np.nan, np.float32))
    assert_one_line_error(vae_cli("train", "--dataset", bad, "--out", tmp_path / "r", "--epochs", "1"), "bad.npy")


def test_train_with_bad_config_is_one_line(tmp_path, vae_cli):
    assert_one_line_error(vae_cli("train", "--dataset", "digits", "--arch", "conv", "--hidden", "16", "--out",
                              tmp_path / "r", "--latent-dim", "0"), "latent size")


def test_diverging_run_exits_non_zero_with_the_reason(tmp_path, vae_cli):
    proc = vae_cli("train", "--dataset", "digits", "--out", tmp_path / "r", "--epochs", "3", "--lr", "1e5",
                   "--hidden", "32")
    assert proc.returncode == 3 and "non-finite" in proc.stderr


def test_datasets_lists_what_is_here(fashion_dir, vae_cli):
    proc = vae_cli("datasets", "--json")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["mnist-5k"]["available"] and rows["digits"]["available"]
    assert rows["fashion-mnist"]["available"] and str(fashion_dir) in rows["fashion-mnist"]["where"]


@pytest.mark.slow
def test_fashion_mnist_trains_with_a_rising_test_elbo(tmp_path, fashion_dir, vae_cli):
    out = tmp_path / "fashion"
    proc = vae_cli("train", "--dataset", "fashion-mnist", "--latent-dim", "10", "--epochs", "2", "--out", out,
               "--batch-size", "256", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    from vae.runs import read_metrics
    tests = [r["elbo"] for r in read_metrics(out / "metrics.jsonl") if r["split"] == "test"]
    assert len(tests) == 2 and tests[1] > tests[0]


@pytest.mark.slow
def test_full_mnist_from_the_shared_folder(tmp_path, mnist_dir, vae_cli):
    proc = vae_cli("train", "--dataset", "mnist", "--data-dir", mnist_dir, "--epochs", "1", "--out", tmp_path / "m",
               "--batch-size", "256", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["test_elbo"] < 0
