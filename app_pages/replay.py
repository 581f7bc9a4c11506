"""Replay training: the latent map, samples and reconstructions of every snapshot (each epoch's end and the steps
between), moved together by one slider with a play button (all in the browser), the frames the Train page showed
live (ui/live_map.py); and the KL of each dimension as training went."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from ui import state
from ui.figures.frames import replay_figure
from ui.live_map import frames, pictures, point_frames, stamp
from ui.widgets import explain
from vae.runs import LOCK
from vae.snapshots import epoch_text, evenly, is_epoch_end, snapshot_dir, snapshot_files

MAX_FRAMES = 40  # frames sent to the browser; a longer run is shown at evenly spaced snapshots

st.header("Replay training")
ck = state.current_checkpoint()
if ck is None:
    st.stop()


folder = snapshot_dir(ck.path) if ck.path else None
files = snapshot_files(folder) if folder else []
now = stamp(files)  # names, sizes and times: a run that gained snapshots reads its new files
snaps = frames(str(folder), now).snapshots if files else []


@st.cache_resource(max_entries=8, show_spinner="Preparing the replay…")
def figure(folder: str, stamp: str, class_names: tuple | None, video_frames: tuple | None):
    """The animation, built once per run state: 40 frames of traces and PNGs take seconds on a busy server.
    A resource, not data: every session reads the one figure (st.plotly_chart copies it), so it is never
    pickled and unpickled, which cost as much again as building it. Each frame is named by its step (unique)
    and labelled by its epoch, fractional between epoch ends."""
    run = frames(folder, stamp)
    shown, coords = evenly(run.snapshots, MAX_FRAMES), evenly(run.coords, MAX_FRAMES)
    drawn = [{"name": str(s.step), "label": epoch_text(s), "coords": c, **pictures(s)}
               for s, c in zip(shown, coords, strict=True)]
    return replay_figure(drawn, shown[-1].labels, list(class_names) if class_names else None,
                         video_frames=np.asarray(video_frames) if video_frames else None), len(shown)


def replay(ck, snaps, folder, stamp) -> None:
    names = (ck.dataset or {}).get("class_names")
    fig, n_shown = figure(str(folder), stamp, tuple(names) if names else None, point_frames(ck, snaps[-1].index))
    st.plotly_chart(fig, key="replay", config={"displayModeBar": False})
    between = sum(not is_epoch_end(s) for s in snaps)
    st.caption(f"{len(snaps)} snapshots (epoch 0 is the untrained model"
               + (f"; {between} taken between epoch ends, labelled by fractional epoch" if between else "") + ")"
               + (f", {n_shown} shown, evenly spaced" if n_shown < len(snaps) else "")
               + (". The latent has more than two dimensions: each snapshot's principal plane is rotated onto the "
                  "one before, as the Train page drew it live."
                  if ck.model_config.latent_dim > 2 else ". The map is the 2-D latent itself."))

    epochs = [s.epoch for s in snaps]
    kl = np.array([s.kl_per_dim for s in snaps], np.float32)
    tested = [s for s in snaps if s.test_elbo is not None]  # epoch ends: the test set is scored there only
    left, right = st.columns(2)
    left.plotly_chart(go.Figure(
        [go.Scatter(x=epochs, y=kl[:, d], mode="lines", name=f"z{d}") for d in range(kl.shape[1])],
        layout=dict(title="KL per dimension (nats) by epoch", xaxis_title="epoch", height=340,
                    margin=dict(l=10, r=10, t=40, b=10), font=dict(size=16))), key="replay_kl")
    right.plotly_chart(go.Figure(
        go.Scatter(x=[s.epoch for s in tested], y=[s.test_elbo for s in tested],
                   mode="lines+markers", name="test ELBO"),
        layout=dict(title="test ELBO (nats) by epoch", xaxis_title="epoch", height=340,
                    margin=dict(l=10, r=10, t=40, b=10), font=dict(size=16))), key="replay_elbo")


@st.fragment(run_every=5.0)
def follow(folder, known: str) -> None:
    """While the run trains (its folder is locked), show each new snapshot as it is written."""
    if stamp(snapshot_files(folder)) != known:
        st.rerun(scope="app")


if folder is not None and (folder.parent / LOCK).exists():
    st.caption(":material/sync: This run is training: new snapshots join the replay as they are written.")
    follow(folder, now)
if len(snaps) < 2:
    st.info("This checkpoint has no training snapshots to replay. Runs trained with this version keep one at "
            "every epoch's end and every 100 steps between (in the run's snapshots/ folder); train one on the "
            "Train page, or choose the bundled mnist-5k-z2 model, which ships with its own.")
else:
    replay(ck, snaps, folder, now)

explain("What am I watching?", """
At epoch 0 the encoder is random: every q(z|x) sits near the prior N(0, I), so the map is a blob, samples are
grey noise and reconstructions all look alike. Each step of the AEVB algorithm (algorithm 1) follows the
gradient of the SGVB estimate of the ELBO (eq. 7): the reconstruction term E[log p(x|z)] pushes images that
must be decoded differently apart, while the KL term pulls every posterior back towards the prior. Watch
classes separate first, then details sharpen; the KL per dimension shows which latent dimensions the model
starts to use, and when. (A Frey Face model has no classes: its map is coloured by frame; watch whether
neighbouring frames gather as it trains.) The same 500 test images, the same prior draws z and the same 8
test images are used in every snapshot, so every change you see is the model's.
""")
