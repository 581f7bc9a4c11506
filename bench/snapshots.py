"""What the live latent map costs: a snapshot's write against a training step, and the Train page's draw of it.

    python bench/snapshots.py [--repeats 20]

1. Training (mnist-5k, the default 784-400-2 model, batch 100, one torch thread as the app's jobs run): a step's
   time, from an epoch's samples/s without a run folder; and a snapshot's (vae/snapshots.py: encode the 500
   probe images, decode 16 z and 16 reconstructions, write the file atomically with its fsyncs), `repeats`
   of them in three rounds interleaved with three epochs, medians. The ratio is what a snapshot every 100
   steps adds to training.
2. The live map (ui/live_map.py) on a run folder of ~31 snapshots, latent 2 and 16: cold (read every file,
   align, build the figure, serialise it as st.plotly_chart does) and warm (a viewer's redraw between
   snapshots: list the folder, hit the caches, serialise).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from common import interleaved, machine, median, table

from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.model import build_model
from vae.snapshots import load_snapshots, make_probe, replay_coords, save_snapshot, take_snapshot
from vae.train import Trainer, train_run


def step_seconds(data, model_config: ModelConfig) -> float:
    """One optimiser step's time: an epoch of training without a run folder (no file writes), samples/s."""
    config = TrainConfig(epochs=1, log_every=10 ** 9)
    result = Trainer(build_model(model_config), data, config, threads=1).fit()
    return config.batch_size / result.samples_per_s


def snapshot_seconds(data, model_config: ModelConfig, folder: Path, repeats: int) -> list[float]:
    """A snapshot's time, taken and written, `repeats` times."""
    model = build_model(model_config)
    probe = make_probe(torch.from_numpy(data.x_test.copy()), data.y_test, model_config.latent_dim, 0)
    times = []
    start = len(list(folder.glob("step-*"))) if folder.is_dir() else 0
    for step in range(start, start + repeats):  # a new step each: a new file, as a run writes them
        t0 = time.perf_counter()
        save_snapshot(folder, step / 40, step, take_snapshot(model, probe))
        times.append(time.perf_counter() - t0)
    return times


def draw_seconds(run: Path, repeats: int) -> tuple[float, float]:
    """(cold, warm) seconds of the live map's draw on `run`, serialised as st.plotly_chart serialises it."""
    import streamlit as st

    from ui import live_map
    from ui.figures.frames import map_span, snapshot_figure

    def cold() -> float:
        t0 = time.perf_counter()
        snaps = load_snapshots(run / "snapshots")
        coords = replay_coords(snaps, snaps[-1].kl_per_dim.shape[0])
        fig = snapshot_figure({"coords": coords[-1], **live_map.pictures(snaps[-1])}, snaps[-1].labels, None,
                              span=map_span(coords))
        fig.to_json()
        return time.perf_counter() - t0

    def warm() -> float:
        t0 = time.perf_counter()
        folder = run / "snapshots"
        now = live_map.stamp(live_map.snapshot_files(folder))
        live_map.frames(str(folder), now)
        live_map._figure(str(folder), now, None, None).to_json()
        return time.perf_counter() - t0

    st.cache_resource.clear()
    warm()  # fills the caches
    return median([cold() for _ in range(repeats)]), median([warm() for _ in range(repeats)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("mnist-5k")
    rows, draws = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for latent in (2, 16):
            model_config = ModelConfig(image_shape=data.image_shape, latent_dim=latent, hidden=(400,))
            folder = Path(tmp) / f"bench-z{latent}"
            runs = interleaved({"step": partial(step_seconds, data, model_config),
                                "snapshots": partial(snapshot_seconds, data, model_config, folder,
                                                     max(1, args.repeats // 3))})
            step, snap = median(runs["step"]), median([t for round_ in runs["snapshots"] for t in round_])
            rows.append([f"mnist-5k z{latent}", f"{step * 1e3:.1f}", f"{snap * 1e3:.1f}", f"{snap / step:.1f}",
                         f"{snap / (100 * step):.1%}"])
            run = Path(tmp) / f"run-z{latent}"  # ~31 snapshots: 10 epochs of 250 steps (M = 16), the default spacing
            train_run(run, data, model_config, TrainConfig(epochs=10, batch_size=100 // 6, log_every=20), threads=1)
            n = len(list((run / "snapshots").iterdir()))
            cold, warm = draw_seconds(run, max(3, args.repeats // 4))
            draws.append([f"z{latent}, {n} snapshots", f"{cold * 1e3:.0f}", f"{warm * 1e3:.0f}"])
    print(machine())
    print(table(["run", "training step (ms)", "snapshot taken + written (ms)", "snapshot / step",
                 "added at one per 100 steps"], rows))
    print()
    print(table(["live map", "cold draw (ms)", "warm redraw (ms)"], draws))


if __name__ == "__main__":
    main()
