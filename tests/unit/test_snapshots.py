"""Per-epoch snapshots (the replay) and Procrustes alignment (aligned comparison, steady replays)."""
import numpy as np
import pytest

from vae.config import ModelConfig, TrainConfig
from vae.geometry import align_sequence, align_to, plane, procrustes
from vae.projections import aligned_maps
from vae.runs import read_metrics
from vae.snapshots import PROBE_POINTS, SHOWN, SnapshotError, load_snapshots, read_snapshot, snapshot_dir
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
    (snapshots / "epoch-00009.safetensors").write_bytes((snapshots / "epoch-00002.safetensors").read_bytes())
    train_run(out, mnist5k, config, TrainConfig(epochs=3), resume=True)
    assert [s.epoch for s in load_snapshots(out / "snapshots")] == [0, 1, 2, 3]


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


def test_a_sequence_is_aligned_to_its_last_map():
    rng = np.random.default_rng(2)
    last = rng.normal(size=(100, 2))
    flipped = last * [-1, 1]
    out = align_sequence([flipped, last])
    assert len(out) == 2 and np.allclose(out[0], last, atol=1e-5)
    np.testing.assert_array_equal(out[1], last.astype(np.float32))  # the last map is the frame: kept as it is
    assert align_sequence([]) == []


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
