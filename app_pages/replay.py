"""Replay training: the latent map, samples and reconstructions at every epoch, moved together by one
slider with a play button (all in the browser), and the KL of each dimension epoch by epoch."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import state
from ui.figures.frames import replay_figure
from ui.widgets import explain
from vae.data import DataError
from vae.pictures import tile, to_uint8
from vae.runs import LOCK
from vae.snapshots import evenly, load_snapshots, replay_coords, snapshot_dir, snapshot_files

MAX_FRAMES = 40  # frames sent to the browser; a longer run is shown at evenly spaced epochs

st.header("Replay training")
ck = state.current_checkpoint()
if ck is None:
    st.stop()


@st.cache_data(max_entries=8, show_spinner="Reading the snapshots…")
def snapshots(folder: str, stamp: tuple):
    return load_snapshots(folder)  # `stamp` (names and sizes) makes a run that gained epochs read again


folder = snapshot_dir(ck.path) if ck.path else None
files = snapshot_files(folder) if folder else []
stamp = tuple((p.name, p.stat().st_size) for p in files)
snaps = snapshots(str(folder), stamp) if files else []


@st.cache_resource(max_entries=8, show_spinner="Preparing the replay…")
def figure(folder: str, stamp: tuple, latent_dim: int, class_names: tuple | None, video_frames: tuple | None):
    """The animation, built once per run state: 40 frames of traces and PNGs take seconds on a busy server.
    A resource, not data: every session reads the one figure (st.plotly_chart copies it), so it is never
    pickled and unpickled, which cost as much again as building it."""
    snaps = snapshots(folder, stamp)
    shown = evenly(snaps, MAX_FRAMES)
    coords = evenly(replay_coords(snaps, latent_dim), MAX_FRAMES)
    frames = [{"name": str(s.epoch), "coords": c,
               "samples": to_uint8(tile(s.samples / 255.0, 4)),
               "reconstructions": to_uint8(tile(np.concatenate([s.inputs[:8], s.reconstructions[:8]]) / 255.0, 8))}
              for s, c in zip(shown, coords, strict=True)]
    return replay_figure(frames, shown[-1].labels, list(class_names) if class_names else None,
                         video_frames=np.asarray(video_frames) if video_frames else None), len(shown)


def video_frames(ck, snap) -> tuple | None:
    """Each map point's frame in the video, for a data set cut from one (Frey Face), else None. Only a set
    without classes can be one, so the data of a labelled model is never loaded here."""
    if (ck.dataset or {}).get("class_names"):
        return None
    try:
        frame_test = state.dataset_for(ck).frame_test
    except DataError:
        return None  # the replay needs nothing but the snapshots: its map is drawn in one colour
    if frame_test is None or len(snap.index) == 0 or snap.index.max() >= len(frame_test):
        return None
    return tuple(int(f) for f in frame_test[snap.index])


def replay(ck, snaps, folder, stamp) -> None:
    names = (ck.dataset or {}).get("class_names")
    fig, n_shown = figure(str(folder), stamp, ck.model_config.latent_dim, tuple(names) if names else None,
                          video_frames(ck, snaps[-1]))
    st.plotly_chart(fig, key="replay", config={"displayModeBar": False})
    st.caption(f"{len(snaps)} snapshots (epoch 0 is the untrained model)"
               + (f", {n_shown} shown at evenly spaced epochs" if n_shown < len(snaps) else "")
               + (". The latent has more than two dimensions: each epoch's principal plane is rotated onto the "
                  "last one's."
                  if ck.model_config.latent_dim > 2 else ". The map is the 2-D latent itself."))

    epochs = [s.epoch for s in snaps]
    kl = np.array([s.kl_per_dim for s in snaps], np.float32)
    elbo = [s.test_elbo for s in snaps]
    left, right = st.columns(2)
    left.plotly_chart(go.Figure(
        [go.Scatter(x=epochs, y=kl[:, d], mode="lines", name=f"z{d}") for d in range(kl.shape[1])],
        layout=dict(title="KL per dimension (nats) by epoch", xaxis_title="epoch", height=340,
                    margin=dict(l=10, r=10, t=40, b=10), font=dict(size=16))), key="replay_kl")
    right.plotly_chart(go.Figure(
        go.Scatter(x=[e for e, v in zip(epochs, elbo, strict=True) if v is not None],
                   y=[v for v in elbo if v is not None],
                   mode="lines+markers", name="test ELBO"),
        layout=dict(title="test ELBO (nats) by epoch", xaxis_title="epoch", height=340,
                    margin=dict(l=10, r=10, t=40, b=10), font=dict(size=16))), key="replay_elbo")


@st.fragment(run_every=5.0)
def follow(folder, stamp: tuple) -> None:
    """While the run trains (its folder is locked), show each new epoch as it is written."""
    now = tuple((p.name, p.stat().st_size) for p in snapshot_files(folder))
    if now != stamp:
        st.rerun(scope="app")


if folder is not None and (folder.parent / LOCK).exists():
    st.caption(":material/sync: This run is training: new epochs join the replay as they finish.")
    follow(folder, stamp)
if len(snaps) < 2:
    st.info("This checkpoint has no training snapshots to replay. Runs trained with this version keep one per "
            "epoch (in the run's snapshots/ folder); train one on the Train page, or choose the bundled "
            "mnist-5k-z2 model, which ships with its own.")
else:
    replay(ck, snaps, folder, stamp)

explain("What am I watching?", """
At epoch 0 the encoder is random: every q(z|x) sits near the prior N(0, I), so the map is a blob, samples are
grey noise and reconstructions all look alike. Each step of the AEVB algorithm (algorithm 1) follows the
gradient of the SGVB estimate of the ELBO (eq. 7): the reconstruction term E[log p(x|z)] pushes images that
must be decoded differently apart, while the KL term pulls every posterior back towards the prior. Watch
classes separate first, then details sharpen; the KL per dimension shows which latent dimensions the model
starts to use, and when. (A Frey Face model has no classes: its map is coloured by frame; watch whether
neighbouring frames gather as it trains.) The same 500 test images, the same prior draws z and the same 8
test images are used at every epoch, so every change you see is the model's.
""")
