"""The Train page's live latent map (ui/live_map.py) through AppTest: it draws a run's newest snapshot from the
run folder's files, says where in training it was taken, keeps its axes when a frame lands, and shows the frames
Replay plays afterwards."""
import shutil

import numpy as np
import pytest

from tests.app.support import figures, values
from vae.config import ModelConfig, TrainConfig
from vae.data import load_dataset
from vae.snapshots import load_snapshots, replay_coords, save_snapshot
from vae.train import train_run

MAP_TITLE = "posterior means of"  # the map panel's title, as Replay's frames have it


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def live_map(at) -> dict:
    """The live map's figure: the one whose first panel is the map of posterior means."""
    found = [f for f in figures(at) if any(a.get("text", "").startswith(MAP_TITLE)
                                           for a in f["layout"].get("annotations", []))]
    assert len(found) == 1, [f["layout"].get("annotations") for f in figures(at)]
    return found[0]


def map_caption(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Latent map at"))


def test_the_train_page_draws_a_runs_newest_snapshot_with_where_it_was_taken(open_page, runs_dir, digits):
    # 180 steps an epoch at M = 8: the default spacing (100 steps) adds a snapshot inside each epoch
    train_run(runs_dir / "live-z2", digits, ModelConfig(image_shape=digits.image_shape, latent_dim=2, hidden=(16,)),
              TrainConfig(epochs=2, batch_size=8))
    snaps = load_snapshots(runs_dir / "live-z2" / "snapshots")
    assert [s.step for s in snaps] == [0, 100, 180, 280, 360]
    at = open_page("train", tr_watch="live-z2")
    assert map_caption(at) == (f"Latent map at step 360 (epoch 2), frame 5 of 5; test ELBO "
                               f"{snaps[-1].test_elbo:,.1f} nats.")
    fig = live_map(at)
    scatters = [t for t in fig["data"] if t["type"] == "scatter"]
    assert [t["name"] for t in scatters] == [str(d) for d in range(10)]  # coloured by class, as every map
    assert sum(len(values(t["x"])) for t in scatters) == len(snaps[-1].index)
    assert [t["type"] for t in fig["data"]].count("image") == 2  # samples from fixed z, reconstructions
    span = fig["layout"]["xaxis"]["range"]
    assert span == fig["layout"]["yaxis"]["range"] and span[0] == -span[1] and span[1] >= 3

    # Frames land between epoch ends (as while the run trains): the page draws each, on axes that hold every
    # frame so far, so a frame that shrinks back is seen shrinking.
    folder = runs_dir / "live-z2" / "snapshots"
    last = snaps[-1]
    arrays = {k: getattr(last, k) for k in ("index", "labels", "kl_per_dim", "samples", "reconstructions", "inputs")}
    save_snapshot(folder, 2.5, 450, {**arrays, "coords": last.coords * 4})
    at.run()
    assert map_caption(at) == (f"Latent map at step 450 (epoch 2.50), frame 6 of 6; test ELBO "
                               f"{last.test_elbo:,.1f} nats at epoch 2.")
    grown = live_map(at)["layout"]["xaxis"]["range"]
    assert grown[1] >= 4 * np.abs(last.coords).max() and grown[1] > span[1]
    save_snapshot(folder, 2.75, 495, {**arrays, "coords": last.coords * 0.5})
    at.run()
    assert map_caption(at).startswith("Latent map at step 495 (epoch 2.75), frame 7 of 7")
    assert live_map(at)["layout"]["xaxis"]["range"] == grown  # motion, not rescaling

def test_a_larger_latents_live_frames_are_the_replays_and_a_run_without_snapshots_says_so(open_page, runs_dir,
                                                                                          digits):
    train_run(runs_dir / "live-z4", digits, ModelConfig(image_shape=digits.image_shape, latent_dim=4, hidden=(16,)),
              TrainConfig(epochs=1, batch_size=8))
    at = open_page("train", tr_watch="live-z4")
    drawn = [t for t in live_map(at)["data"] if t["type"] == "scatter"]
    snaps = load_snapshots(runs_dir / "live-z4" / "snapshots")
    aligned = replay_coords(snaps, 4)[-1]  # each frame turned onto the one before: what Replay plays
    rows = [np.flatnonzero(snaps[-1].labels == int(t["name"])) for t in drawn]
    assert all(np.allclose(values(t["x"]), aligned[r, 0], atol=1e-4)
               and np.allclose(values(t["y"]), aligned[r, 1], atol=1e-4)
               for t, r in zip(drawn, rows, strict=True))

    at = open_page("replay", model_key="run:live-z4")
    replay = next(f for f in figures(at) if f.get("frames"))
    assert [f["name"] for f in replay["frames"]] == ["0", "100", "180"]  # named by step, labelled by epoch
    assert [s["label"] for s in replay["layout"]["sliders"][0]["steps"]] == ["0", "0.56", "1"]
    assert any("1 taken between epoch ends" in c.value for c in at.caption)

    shutil.rmtree(runs_dir / "live-z4" / "snapshots")
    at = open_page("train", tr_watch="live-z4")
    assert any(c.value.startswith("No snapshot of this run yet") for c in at.caption)
    assert not any(c.value.startswith("Latent map at") for c in at.caption)
