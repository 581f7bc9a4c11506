"""Shared test fixtures.

A test that needs something a user's machine may lack (Chromium, the full
MNIST files, Debian's Fashion-MNIST package) calls `require(...)`: it skips
with a reason on a user's machine, and fails under CI=true, so a green CI run
means every test ran.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
# Parsed data sets (vae/data/cache.py) go to a folder of this test run, never the user's ~/.cache; servers
# and training processes that the tests start inherit it.
os.environ.setdefault("VAE_CACHE_DIR", tempfile.mkdtemp(prefix="vae-test-cache-"))
# One torch thread for every training run the tests start, in process or not (vae.train keeps a set
# OMP_NUM_THREADS): two cores shared by the test process, servers and children, and seeded runs that must
# repeat bit for bit. tests/test_threads.py removes it where the automatic choice is under test.
os.environ["OMP_NUM_THREADS"] = "1"


def require(condition: bool, reason: str) -> None:
    """Skip when `condition` is false, except under CI=true, where it fails."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run everything, but: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def _pin_torch_threads():
    # Two cores: one intra-op thread keeps tests from thrashing each other.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder holding the four MNIST IDX files (../shared/data/mnist or $VAE_TEST_MNIST_DIR)."""
    path = Path(os.environ.get("VAE_TEST_MNIST_DIR", SHARED_MNIST))
    require((path / "train-images-idx3-ubyte.gz").exists() or (path / "train-images-idx3-ubyte").exists(),
            f"full MNIST IDX files not found in {path}")
    return path


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    require(DEBIAN_FASHION.exists(), "Debian's dataset-fashion-mnist package is not installed")
    return DEBIAN_FASHION
