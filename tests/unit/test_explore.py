"""What the pages draw: paths, grids, traversals, projections and their on-disk cache, image tiles."""
import numpy as np
import pytest
from scipy.stats import norm

from vae.latent import decode, dims_by_kl, interpolate, manifold_grid, prior_samples, traversals
from vae.pictures import tile, upscale
from vae.projections import cached_projection, pca_with_path, project


def test_linear_path_ends_at_both_points_in_equal_steps():
    path = interpolate([0, 0], [2, 4], 5, "linear")
    np.testing.assert_allclose(path[[0, -1]], [[0, 0], [2, 4]])
    np.testing.assert_allclose(np.diff(path, axis=0), np.full((4, 2), [0.5, 1.0]), atol=1e-6)


def test_spherical_path_keeps_the_norm_between_points_of_equal_norm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=20), rng.normal(size=20)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    path = interpolate(a, b, 9, "spherical")
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-5)
    np.testing.assert_allclose(path[[0, -1]], [a, b], atol=1e-5)
    linear = interpolate(a, b, 9, "linear")
    assert np.linalg.norm(linear[4]) < np.linalg.norm(path[4])  # the straight line dips toward the origin


def test_manifold_grid_uses_the_gaussian_inverse_cdf(z2):
    images, values = manifold_grid(z2.model, 7)
    assert images.shape == (7, 7, 28, 28)
    np.testing.assert_allclose(values, norm.ppf(np.linspace(0.05, 0.95, 7)), rtol=1e-5, atol=1e-6)
    # top-left is (x = lowest, y = highest): decode that z directly and compare
    np.testing.assert_allclose(images[0, 0], decode(z2.model, [[values[0], values[-1]]])[0], atol=1e-5)


def test_manifold_slice_of_a_larger_latent_moves_only_the_chosen_dimensions(z16):
    base = np.linspace(-1, 1, 16).astype(np.float32)
    images, values = manifold_grid(z16.model, 3, dims=(4, 9), base=base)
    z = base.copy()
    z[4], z[9] = values[0], values[-1]
    np.testing.assert_allclose(images[0, 0], decode(z16.model, z[None])[0], atol=1e-5)
    with pytest.raises(ValueError):
        manifold_grid(z16.model, 3, dims=(4, 4))


def test_traversals_sweep_one_dimension_per_row(z16):
    rows = traversals(z16.model, np.zeros(16, np.float32), [3, 5], n=5, span=2.0)
    assert rows.shape == (2, 5, 28, 28)
    z = np.zeros(16, np.float32)
    z[5] = 2.0
    np.testing.assert_allclose(rows[1, -1], decode(z16.model, z[None])[0], atol=1e-5)
    assert dims_by_kl([0.1, 3.0, 1.0]) == [1, 2, 0]


def test_prior_samples_follow_seed_and_temperature(z2):
    a, b = prior_samples(z2.model, 4, seed=1), prior_samples(z2.model, 4, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, prior_samples(z2.model, 4, seed=2))
    assert not np.array_equal(a, prior_samples(z2.model, 4, seed=1, temperature=0.5))
    assert a.shape == (4, 28, 28) and a.min() >= 0 and a.max() <= 1


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projections_give_2d_float32_coordinates(method):
    mu = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    coords, index = project(mu, method)
    assert coords.shape == (300, 2) and coords.dtype == np.float32 and np.array_equal(index, np.arange(300))


def test_a_2d_latent_is_its_own_map_and_a_1d_latent_is_drawn_against_zero():
    mu = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    np.testing.assert_array_equal(project(mu, "latent")[0], mu)
    one = project(mu[:, :1], "latent")[0]
    assert one.shape == (50, 2) and not one[:, 1].any()
    with pytest.raises(ValueError, match="choose PCA"):
        project(np.zeros((5, 8), np.float32), "latent")


@pytest.mark.slow
def test_umap_runs_once_per_checkpoint_then_comes_from_the_cache(tmp_path, monkeypatch):
    import vae.projections as explore
    mu = np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32)
    first = cached_projection(tmp_path, "abc", mu, "umap")
    calls = []
    monkeypatch.setattr(explore, "project", lambda *a, **k: calls.append(a))
    second = cached_projection(tmp_path, "abc", mu, "umap")
    assert calls == [] and np.array_equal(first[0], second[0])
    assert list((tmp_path / "cache" / "abc").glob("projection-umap-*.npz"))


def test_a_damaged_cache_entry_is_recomputed(tmp_path):
    mu = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    coords, _ = cached_projection(tmp_path, "k", mu, "pca")
    entry = next((tmp_path / "cache" / "k").glob("*.npz"))
    entry.write_bytes(b"not an npz")
    again, _ = cached_projection(tmp_path, "k", mu, "pca")
    np.testing.assert_allclose(again, coords)


def test_pca_path_uses_the_same_fit_as_the_map():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(200, 6)).astype(np.float32)
    coords, path = pca_with_path(mu, mu[[3, 7]])
    np.testing.assert_allclose(path, coords[[3, 7]], atol=1e-5)


def test_tiles_and_nearest_neighbour_upscaling():
    imgs = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    grid = tile(imgs, 2, pad=1, fill=-1)
    assert grid.shape == (3, 7) and (grid[:, 3] == -1).all()
    big = upscale(imgs[0], 4)
    assert big.shape == (12, 12) and (big[:4, :4] == imgs[0, 0, 0]).all()
