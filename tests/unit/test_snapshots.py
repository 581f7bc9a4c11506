"""Snapshots keyed by step (the live map and the replay) and Procrustes alignment (aligned comparison, steady
replays)."""
import shutil

import numpy as np
import pytest

from vae.config import ModelConfig, TrainConfig
from vae.geometry import align_chain, align_to, plane, procrustes
from vae.projections import aligned_maps
from vae.runs import read_metrics
from vae.snapshots import (
    MAX_STEP_SNAPSHOTS,
    PROBE_POINTS,
    SHOWN,
    SnapshotError,
    drop_after,
    load_snapshots,
    read_snapshot,
    replay_coords,
    save_snapshot,
    snapshot_dir,
    snapshot_files,
    snapshot_interval,
    where,
)
from vae.train import train_run


@pytest.fixture(scope="module")
def run(tmp_path_factory, mnist5k):
    out = tmp_path_factory.mktemp("snap") / "run"
    config = ModelConfig(image_shape=mnist5k.image_shape, latent_dim=4, hidden=(64,))
    train_run(out, mnist5k, config, TrainConfig(epochs=3, batch_size=100, lr=3e-3))
    return out


def test_every_epoch_and_the_untrained_model_leave_a_snapshot(run, mnist5k):
    snaps = load_snapshots(run / "snapshots")
    assert [s.epoch for s in snaps] == [0, 1, 2, 3]
    first, last = snaps[0], snaps[-1]
    assert first.test_elbo is None and last.test_elbo == pytest.approx(
        [r for r in read_metrics(run / "metrics.jsonl") if r["split"] == "test"][-1]["elbo"])
    assert last.coords.shape == (PROBE_POINTS, 2) and last.kl_per_dim.shape == (4,)
    assert last.samples.shape == (SHOWN, 28, 28) and last.samples.dtype == np.uint8
    assert np.array_equal(last.labels, mnist5k.y_test[last.index])
    # The same probe every epoch, and the space changes as it trains: the KL grows from ~0 at init.
    assert all(np.array_equal(s.index, first.index) for s in snaps)
    assert last.kl_per_dim.sum() > first.kl_per_dim.sum() + 1.0
    assert not np.array_equal(first.reconstructions, last.reconstructions)
    assert np.array_equal(first.inputs, last.inputs)


def test_test_records_carry_the_kl_of_each_dimension(run):
    tests = [r for r in read_metrics(run / "metrics.jsonl") if r["split"] == "test"]
    assert all(len(r["kl_per_dim"]) == 4 for r in tests)
    assert sum(tests[-1]["kl_per_dim"]) == pytest.approx(tests[-1]["kl"], abs=0.01)


def test_resume_forgets_the_snapshots_of_the_abandoned_future(tmp_path, mnist5k):
    out = tmp_path / "run"
    config = ModelConfig(image_shape=mnist5k.image_shape, latent_dim=2, hidden=(32,))
    train_run(out, mnist5k, config, TrainConfig(epochs=2))
    snapshots = out / "snapshots"
    # a run killed in its third epoch left a snapshot past its resume state's step (80)
    (snapshots / "step-000000100.safetensors").write_bytes((snapshots / "step-000000080.safetensors").read_bytes())
    train_run(out, mnist5k, config, TrainConfig(epochs=3), resume=True)
    assert [s.epoch for s in load_snapshots(out / "snapshots")] == [0, 1, 2, 3]
    assert [p.name for p in snapshot_files(snapshots)][-2:] == ["step-000000080.safetensors",
                                                                "step-000000120.safetensors"]


def test_broken_or_hostile_snapshot_files_are_skipped(run, tmp_path):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    good = sorted((run / "snapshots").iterdir())
    (folder / good[0].name).write_bytes(good[0].read_bytes())
    (folder / "epoch-00001.safetensors").write_bytes(b"\x80\x04pickle payload")
    (folder / "epoch-00002.safetensors").write_bytes(good[1].read_bytes()[:500])
    with pytest.raises(SnapshotError):
        read_snapshot(folder / "epoch-00001.safetensors")
    assert [s.epoch for s in load_snapshots(folder)] == [0]


def test_snapshot_folders_sit_beside_their_checkpoint(tmp_path):
    assert snapshot_dir(tmp_path / "run" / "model.safetensors") == tmp_path / "run" / "snapshots"
    assert snapshot_dir("assets/mnist-5k-z2.safetensors").name == "mnist-5k-z2.snapshots"


def test_plane_keeps_small_latents_and_projects_large_ones():
    rng = np.random.default_rng(0)
    assert np.allclose(plane(np.arange(4.0).reshape(4, 1))[:, 1], 0)
    two = rng.normal(size=(50, 2))
    assert np.allclose(plane(two), two)
    wide = rng.normal(size=(200, 6)) * [5, 3, 0.1, 0.1, 0.1, 0.1]
    projected = plane(wide)
    assert projected.shape == (200, 2) and projected.var(0).sum() > 0.95 * wide.var(0).sum()


def test_procrustes_recovers_a_rotation_and_reflection_and_reports_unrelated_maps():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(300, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    source = (target - 0.5) @ q.T  # rotated (maybe reflected) and shifted
    aligned, alignment = align_to(source, target)
    assert np.allclose(aligned, target, atol=1e-5) and alignment.residual < 1e-9
    assert np.allclose(alignment.invert(alignment.apply(source[:5])), source[:5])
    assert procrustes(rng.normal(size=(300, 3)), target).residual > 0.8
    with pytest.raises(ValueError, match="same points"):
        procrustes(source[:10], target)


def test_a_sequence_is_carried_frame_by_frame_onto_the_first_and_a_longer_one_keeps_its_frames():
    rng = np.random.default_rng(2)
    first = rng.normal(size=(100, 2)) * [3, 1]
    first -= first.mean(0)  # centred, as a principal plane is
    q, _ = np.linalg.qr(rng.normal(size=(2, 2)))
    turned = [first, first * [-1, 1], first @ q, (first * 1.5) @ q.T]  # flipped, rotated, grown: as a PCA may
    out = align_chain(turned)
    np.testing.assert_array_equal(out[0], first.astype(np.float32))  # the first is the frame: kept as it is
    assert all(np.allclose(o, first * (1.5 if i == 3 else 1), atol=1e-4) for i, o in enumerate(out))
    assert all(np.array_equal(a, b) for a, b in zip(align_chain(turned[:3]), out, strict=False))
    assert align_chain([]) == []


def test_aligned_maps_line_up_the_same_images_across_two_models():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(400, 5)) * [4, 2, 1, 0.5, 0.1]
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    other = ref @ q + rng.normal(scale=0.05, size=ref.shape)  # the same layout, rotated, a little noise
    maps = aligned_maps(ref, other)
    assert maps.latent_alignment is not None and maps.residual < 0.01
    assert np.abs(maps.other - maps.reference).max() < 0.5
    # One z of the reference space, carried into the other model's space, lands where that model put it.
    assert np.allclose(maps.latent_alignment.invert(ref[:3]), other[:3], atol=0.3)
    smaller = aligned_maps(ref, ref[:, :3] @ np.linalg.qr(rng.normal(size=(3, 3)))[0])
    assert smaller.latent_alignment is None and smaller.residual < 0.05 and "differ" in smaller.method


def test_a_long_runs_checkpoint_keeps_kl_per_dimension_on_a_bounded_number_of_epochs():
    from vae.checkpoint import _thin_kl
    records = [{"split": "test", "epoch": e, "kl_per_dim": [0.1] * 200} for e in range(1, 1001)]
    thinned = _thin_kl(records, keep=50)
    kept = [r["epoch"] for r in thinned if "kl_per_dim" in r]
    assert len(thinned) == 1000 and len(kept) == 50 and kept[0] == 1 and kept[-1] == 1000
    assert _thin_kl(records[:10], keep=50) == records[:10]


# -- snapshots keyed by step --------------------------------------------------------------------------
def test_a_mnist_5k_sized_run_with_the_defaults_leaves_ten_frames_or_more(tmp_path, mnist5k):
    out = tmp_path / "run"  # 4,000 images at M = 100: 40 steps an epoch, the default 10 epochs
    train_run(out, mnist5k, ModelConfig(image_shape=mnist5k.image_shape, latent_dim=2, hidden=(16,)), TrainConfig())
    assert len(list((out / "snapshots").glob("step-*.safetensors"))) >= 10
    assert len(load_snapshots(out / "snapshots")) == 11  # the untrained model and every epoch's end


def test_a_long_epoch_is_snapshotted_between_its_ends_at_fractional_epochs(tmp_path, digits):
    config = ModelConfig(image_shape=digits.image_shape, latent_dim=2, hidden=(16,))
    train_run(tmp_path / "long", digits, config, TrainConfig(epochs=1, batch_size=8))  # 180 steps an epoch
    names = [p.name for p in snapshot_files(tmp_path / "long" / "snapshots")]
    assert names == ["step-000000000.safetensors", "step-000000100.safetensors", "step-000000180.safetensors"]
    snaps = load_snapshots(tmp_path / "long" / "snapshots")
    assert [s.epoch for s in snaps] == [0, pytest.approx(100 / 180, abs=1e-4), 1]
    assert [s.test_elbo is None for s in snaps] == [True, True, False]  # the test set is scored at epoch ends
    assert [where(s) for s in snaps] == ["step 0 (untrained)", "step 100 (epoch 0.56)", "step 180 (epoch 1)"]
    train_run(tmp_path / "ends", digits, config, TrainConfig(epochs=1, batch_size=8, snapshot_every=0))
    assert [s.step for s in load_snapshots(tmp_path / "ends" / "snapshots")] == [0, 180]


def test_the_spacing_bounds_how_many_snapshots_a_long_run_writes():
    assert snapshot_interval(100, 100 * 600) == 100  # 100 epochs of full MNIST: 600 between epoch ends
    assert snapshot_interval(100, 10 ** 6) == 10 ** 6 // MAX_STEP_SNAPSHOTS  # the paper's 10^8 samples
    assert snapshot_interval(0, 10 ** 6) == 0


def test_old_epoch_files_and_step_files_load_in_step_order_and_resuming_drops_by_step(tmp_path, repo):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    bundled = repo / "assets" / "mnist-5k-z2.snapshots"
    for epoch in (0, 1, 2):  # an earlier version's files: steps 0, 40 and 80, read from their metadata
        shutil.copy(bundled / f"epoch-{epoch:05d}.safetensors", folder)
    arrays = {k: getattr(read_snapshot(bundled / "epoch-00060.safetensors"), k) for k in
              ("index", "labels", "coords", "kl_per_dim", "samples", "reconstructions", "inputs")}
    for step in (60, 100):  # this version's, between those and after
        assert save_snapshot(folder, step / 40, step, arrays).name == f"step-{step:09d}.safetensors"
    snaps = load_snapshots(folder)
    assert [(s.step, s.epoch) for s in snaps] == [(0, 0), (40, 1), (60, 1.5), (80, 2), (100, 2.5)]
    drop_after(folder, 60)
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-00000.safetensors", "epoch-00001.safetensors",
                                                        "step-000000060.safetensors"]
    assert [s.step for s in load_snapshots(folder)] == [0, 40, 60]


def test_a_latent_above_two_dimensions_keeps_each_frames_picture_as_later_frames_land(tmp_path, digits):
    out = tmp_path / "run"
    train_run(out, digits, ModelConfig(image_shape=digits.image_shape, latent_dim=4, hidden=(32,)),
              TrainConfig(epochs=2, batch_size=32, snapshot_every=10, log_every=5, lr=3e-3))
    snaps = load_snapshots(out / "snapshots")
    assert len(snaps) >= 10
    every = replay_coords(snaps, 4)
    for k in (3, 7):  # what the live map drew when the run had k frames is what the replay plays afterwards
        assert all(np.array_equal(a, b) for a, b in zip(replay_coords(snaps[:k], 4), every, strict=False))
    # each frame is its own principal plane turned (never stretched) onto the frame before it
    assert all(np.allclose(np.linalg.norm(c, axis=1), np.linalg.norm(s.coords, axis=1), atol=1e-3)
               for c, s in zip(every, snaps, strict=True))
    later = [procrustes(every[i], every[i - 1]).rotation for i in range(len(every) // 2, len(every))]
    assert all(np.allclose(r, np.eye(2), atol=0.3) for r in later)  # settled frames: already in their place
