"""Bundled models ship their derived results: what is shipped is current, seeded without computing,
and equal to a fresh computation."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vae import bundle, derived
from vae.checkpoint import load_checkpoint
from vae.evaluate import checkpoint_dataset
from vae.storage import cache_dir


def test_every_asset_ships_results_for_exactly_this_file_and_every_default_page_task(bundled_asset):
    asset = bundled_asset  # one test per shipped model (tests/conftest.py's pytest_generate_tests)
    checkpoint = load_checkpoint(asset)
    manifest = json.loads((bundle.derived_dir(asset) / bundle.MANIFEST).read_text())
    assert manifest["sha256"] == checkpoint.sha256, f"{asset.name} changed: run `{manifest['made_by']}`"
    assert manifest["made_by"].startswith("python -m vae bundle")
    for name, digest in manifest["files"].items():
        assert bundle._sha256(bundle.derived_dir(asset) / name) == digest
    # Every kind of result a page computes once per checkpoint is shipped (that nothing is computed is
    # tests/browser/test_first_contact.py's; that each file equals a fresh computation, the slow test below).
    data = checkpoint_dataset(checkpoint)
    tasks = derived.page_defaults(checkpoint, data)
    assert {name for name, _ in tasks} >= {"iw-curve", "iw-estimate", "projection", "estimator-cell"}


def test_seeding_copies_only_what_matches_its_manifest(tmp_path, repo):
    asset = tmp_path / "assets" / "m.safetensors"
    shutil.copytree(repo / "assets" / "mnist-5k-z2.derived", tmp_path / "assets" / "m.derived")
    shutil.copyfile(repo / "assets" / "mnist-5k-z2.safetensors", asset)
    sha = load_checkpoint(asset).sha256
    files = json.loads((bundle.derived_dir(asset) / bundle.MANIFEST).read_text())["files"]
    damaged = sorted(files)[0]
    (bundle.derived_dir(asset) / damaged).write_bytes(b"not what the manifest says")
    runs = tmp_path / "runs"
    assert bundle.seed_cache(runs, asset, "0" * 64) == 0  # results of another file are never used
    assert bundle.seed_cache(runs, asset, sha) == len(files) - 1
    seeded = {p.name for p in cache_dir(runs, sha).iterdir()}
    assert seeded == set(files) - {damaged}
    assert bundle.seed_cache(runs, asset, sha) == 0  # present files are left alone


def _same(a, b) -> None:
    if a.suffix == ".npz":
        with np.load(a) as fa, np.load(b) as fb:
            assert set(fa.files) == set(fb.files)
            for k in fa.files:
                np.testing.assert_allclose(fa[k], fb[k], rtol=1e-4, atol=1e-4, err_msg=f"{a.name}:{k}")
    else:  # float32 gradient statistics and sums may differ in their last bits between CPUs; a value
        # rounded to its standard error's digit (the IW column) may then differ by one unit of that digit
        va, vb = json.loads(a.read_text()), json.loads(b.read_text())
        atol = 0.011 if a.name.startswith("iw-mean") else 1e-6
        np.testing.assert_allclose(_numbers(va), _numbers(vb), rtol=1e-4, atol=atol, err_msg=a.name)


def _numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _numbers(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [float(value)] if isinstance(value, (int, float)) else []


@pytest.mark.slow
def test_the_shipped_results_match_a_fresh_computation(tmp_path, all_bundled_assets):
    """Every shipped file of the 2-D model, and the 16-D model's PCA, IW and lab files, recomputed by the
    background tasks in an empty runs folder (UMAP and t-SNE of 5,000 points are left out: minutes)."""
    for asset in all_bundled_assets:
        checkpoint = load_checkpoint(asset)
        data = checkpoint_dataset(checkpoint)
        runs = tmp_path / asset.stem
        for name, args in derived.page_defaults(checkpoint, data):
            if args.get("method") in ("umap", "tsne"):
                continue
            derived.TASKS[name](runs, checkpoint, data, **args)
        fresh = cache_dir(runs, checkpoint.sha256)
        shipped = bundle.derived_dir(asset)
        for path in sorted(fresh.iterdir()):
            assert (shipped / path.name).is_file(), f"{asset.stem}: {path.name} is computed by a page but not shipped"
            _same(shipped / path.name, path)


@pytest.mark.slow
def test_the_bundle_command_ships_a_run_with_its_snapshots_and_results(tmp_path, vae_cli):
    trained = vae_cli("train", "--dataset", "digits", "--latent-dim", "2", "--hidden", "16", "--epochs", "1",
                  "--threads", "1", "--out", str(tmp_path / "tiny"))
    assert trained.returncode == 0, trained.stderr
    made = vae_cli("bundle", str(tmp_path / "tiny"), "--assets", str(tmp_path / "assets"), "--snapshots")
    assert made.returncode == 0, made.stderr
    asset = Path(json.loads(made.stdout)["asset"])
    assert asset == tmp_path / "assets" / "tiny.safetensors"
    assert asset.read_bytes() == (tmp_path / "tiny" / "model.safetensors").read_bytes()
    assert sorted(p.name for p in (tmp_path / "assets" / "tiny.snapshots").iterdir()) == \
        sorted(p.name for p in (tmp_path / "tiny" / "snapshots").iterdir())
    checkpoint = load_checkpoint(asset)
    manifest = json.loads((bundle.derived_dir(asset) / bundle.MANIFEST).read_text())
    assert manifest["sha256"] == checkpoint.sha256
    # one file per default task of the pages, and each made by that task
    expected = len(derived.page_defaults(checkpoint, checkpoint_dataset(checkpoint)))
    assert len(manifest["files"]) == expected
    refused = vae_cli("bundle", str(tmp_path / "assets" / "tiny.snapshots"), "--assets", str(tmp_path / "assets"))
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
