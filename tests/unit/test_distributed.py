"""Data-parallel training with torchrun: 2 CPU processes (gloo on loopback) match one process."""
import json
import os
import subprocess
import sys

import pytest
import torch

from vae.checkpoint import load_checkpoint
from vae.distributed import DistContext
from vae.runs import read_metrics

ARGS = ["--dataset", "digits", "--hidden", "64", "--latent-dim", "3", "--epochs", "3", "--batch-size", "100",
        "--binarize", "dynamic"]


@pytest.mark.parametrize("n,world", [(100, 2), (101, 2), (7, 3), (1, 2)])
def test_shards_cover_the_batch_once(n, world):
    rows = [list(range(n))[DistContext(rank=r, world_size=world).shard(n)] for r in range(world)]
    assert sum(rows, []) == list(range(n)) and max(map(len, rows)) - min(map(len, rows)) <= 1


@pytest.mark.slow
def test_two_processes_match_one_for_the_same_global_batch(tmp_path, repo):
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "vae", "train", *ARGS, "--out", str(tmp_path / "two")],
                         cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    # a worker's own error comes first in stderr, torchrun's summary of the failure last: both are shown
    assert two.returncode == 0, f"{two.stderr[:3000]}\n[...]\n{two.stderr[-1500:]}"
    one = subprocess.run([sys.executable, "-m", "vae", "train", *ARGS, "--out", str(tmp_path / "one"),
                          "--threads", "1"], cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    assert one.returncode == 0, one.stderr
    lines = [line for line in two.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # rank 0 alone reports
    a, b = (load_checkpoint(tmp_path / k) for k in ("one", "two"))
    for key, value in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[key], value, atol=1e-5, rtol=1e-4)
    assert abs(a.summary["test_elbo"] - b.summary["test_elbo"]) < 0.01
    assert json.loads(lines[0])["test_elbo"] == pytest.approx(b.summary["test_elbo"])
    # rank 0 alone writes the run folder: every record once
    records = {k: read_metrics(tmp_path / k / "metrics.jsonl") for k in ("one", "two")}
    assert len(records["two"]) == len(records["one"])
