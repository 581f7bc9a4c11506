"""What every layer of the tests shares: the repository, `require`, the bundled models, the small data sets,
the command line, and the environment every test process and child process runs under.

tests/unit/ holds plain tests, tests/app/ the pages through Streamlit's AppTest, tests/browser/ the app in
headless Chromium; each folder's conftest.py holds its own layer's fixtures. The folders are packages
(tests/__init__.py and one in each), so pytest imports `tests/unit/test_reproduce.py` and
`tests/browser/test_reproduce.py` as two modules, and puts the repository (the folder above the outermost
package) on sys.path: a test module imports non-test helpers as `from tests.browser.support import ...`.
Nothing is imported from a conftest.py, and no test module imports another.

A test that needs something a user's machine may lack (Chromium, the full MNIST files, Frey Face's file,
Debian's Fashion-MNIST package) calls the `require` fixture: it skips with a reason on a user's machine, and fails
under CI=true, so a green CI run means every test ran.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
# Parsed data sets (vae/data/cache.py) go to a folder of this test run, never the user's ~/.cache; servers
# and training processes that the tests start inherit it. (Set here, before any test module imports vae.)
os.environ.setdefault("VAE_CACHE_DIR", tempfile.mkdtemp(prefix="vae-test-cache-"))
# One torch thread for every training run the tests start, in process or not (vae.train keeps a set
# OMP_NUM_THREADS): two cores shared by the test process, servers and children, and seeded runs that must
# repeat bit for bit. tests/unit/test_threads.py removes it where the automatic choice is under test.
os.environ["OMP_NUM_THREADS"] = "1"


def _require(condition: bool, reason: str) -> None:
    """Skip when `condition` is false, except under CI=true, where it fails."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run everything, but: {reason}")
    pytest.skip(reason)


def bundled_assets(root: Path) -> list[Path]:
    """The models shipped in assets/ (each with its .derived/ results and perhaps .snapshots/)."""
    return sorted((root / "assets").glob("*.safetensors"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test that takes `bundled_asset` runs once per shipped model, found at collection time from pytest's
    # rootpath (the folder of pyproject.toml): a new asset is tested without editing a list.
    if "bundled_asset" in metafunc.fixturenames:
        metafunc.parametrize("bundled_asset", bundled_assets(metafunc.config.rootpath), ids=lambda p: p.stem)


@pytest.fixture(scope="session")
def repo(pytestconfig: pytest.Config) -> Path:
    """The repository's root: pytest's rootpath, the folder of the pyproject.toml that configures it."""
    return pytestconfig.rootpath


@pytest.fixture(scope="session")
def require() -> Callable[[bool, str], None]:
    """require(condition, reason): skip when `condition` is false, except under CI=true, where it fails."""
    return _require


@pytest.fixture(autouse=True, scope="session")
def _pin_torch_threads():
    # Two cores: one intra-op thread keeps tests from thrashing each other.
    torch.set_num_threads(1)


# -- the bundled models and the small data sets: loaded once a run, read-only by every test ----------
@pytest.fixture(scope="session")
def z2(repo):
    """The bundled 2-D model's checkpoint (assets/mnist-5k-z2.safetensors): .model, .sha256, .path, ..."""
    from vae.checkpoint import load_checkpoint
    return load_checkpoint(repo / "assets" / "mnist-5k-z2.safetensors")


@pytest.fixture(scope="session")
def z16(repo):
    """The bundled 16-D model's checkpoint (assets/mnist-5k-z16.safetensors)."""
    from vae.checkpoint import load_checkpoint
    return load_checkpoint(repo / "assets" / "mnist-5k-z16.safetensors")


@pytest.fixture(scope="session")
def all_bundled_assets(repo) -> list[Path]:
    """Every shipped model's file, for a test that walks them all in one go (see also `bundled_asset`)."""
    return bundled_assets(repo)


@pytest.fixture(scope="session")
def mnist5k():
    """The 5,000-image MNIST subset shipped with the package (4,000 train, 1,000 test)."""
    from vae.data import load_dataset
    return load_dataset("mnist-5k")


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits: the smallest built-in set, for runs of seconds."""
    from vae.data import load_dataset
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_z2():
    """A small model for `digits`: a 2-D latent, one hidden layer of 32 (runs of a few seconds)."""
    from vae.config import ModelConfig
    return ModelConfig(image_shape=(8, 8), latent_dim=2, hidden=(32,))


# -- data that a user's machine may lack --------------------------------------------------------------
@pytest.fixture(scope="session")
def mnist_dir(repo, require) -> Path:
    """Folder holding the four MNIST IDX files (../shared/data/mnist or $VAE_TEST_MNIST_DIR)."""
    path = Path(os.environ.get("VAE_TEST_MNIST_DIR", repo.parent / "shared" / "data" / "mnist"))
    require((path / "train-images-idx3-ubyte.gz").exists() or (path / "train-images-idx3-ubyte").exists(),
            f"full MNIST IDX files not found in {path}")
    return path


@pytest.fixture(scope="session")
def frey_dir(repo, require) -> Path:
    """Folder holding Frey Face's frey_rawface.mat (../shared/data/frey or $VAE_TEST_FREY_DIR)."""
    path = Path(os.environ.get("VAE_TEST_FREY_DIR", repo.parent / "shared" / "data" / "frey"))
    require((path / "frey_rawface.mat").is_file(), f"Frey Face's frey_rawface.mat not found in {path}")
    return path


@pytest.fixture(scope="session")
def fashion_dir(require) -> Path:
    require(DEBIAN_FASHION.exists(), "Debian's dataset-fashion-mnist package is not installed")
    return DEBIAN_FASHION


# -- the command line ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def vae_cli(repo) -> Callable[..., subprocess.CompletedProcess]:
    """vae_cli(*args, env=None, timeout=300): `python -m vae ARGS` run in the repository as a user runs it,
    one torch thread; returns the finished process (text stdout and stderr)."""
    def run(*args, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vae", *map(str, args)], cwd=repo, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    return run
