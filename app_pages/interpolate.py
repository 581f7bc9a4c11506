"""Interpolate: decode a path between two images' posterior means; the slider runs in the browser."""
from functools import partial

import numpy as np
import streamlit as st

from ui import links, state
from ui.figures.frames import image_frames
from ui.figures.maps import latent_map
from ui.widgets import explain, show_images
from vae.export import gif_bytes
from vae.latent import decode, interpolate
from vae.projections import pca_with_path

st.header("Interpolate")
ck = state.current_checkpoint()
data = state.data_or_message(ck) if ck else None
if ck is None or data is None:
    st.stop()

enc = state.encoding(ck, "test")
n = len(enc.mu)
# Test images 0 and 1: two digits, usually of different classes; a video's (Frey Face's) are neighbouring
# frames, nearly one expression, so its path runs from the first test frame to the last instead.
default_end = n - 1 if enc.frames is not None else min(1, n - 1)
LINKS = [links.Link("start", "ip_i0", links.int_in(0, n - 1)), links.Link("end", "ip_i1", links.int_in(0, n - 1)),
         links.Link("path", "ip_kind", links.one_of("linear", "spherical")),
         links.Link("frames", "ip_steps", links.int_in(5, 40))]
if "start" in st.query_params or "end" in st.query_params:
    st.session_state.setdefault("ip_mode", "by index")  # a link names its end points by index
links.adopt(LINKS)
mode = st.radio("Choose the end points", ["by index", "by class", "on the map"], horizontal=True, key="ip_mode")


def pick_by_class(column, label, default_class, key):
    classes = sorted(set(int(c) for c in enc.labels))
    cls = column.selectbox(label, classes, index=classes.index(default_class) if default_class in classes else 0,
                           format_func=data.label_name, key=f"{key}_class")
    members = np.flatnonzero(enc.labels == cls)
    which = column.number_input(f"which {data.label_name(cls)} (0 = first)", 0, len(members) - 1, 0, key=f"{key}_nth")
    return int(members[which])


a, b = st.columns(2)
if mode == "by class" and enc.labels is not None:
    start, end = pick_by_class(a, "Start class", 0, "ip_a"), pick_by_class(b, "End class", 1, "ip_b")
elif mode == "on the map":
    target = st.radio("A click on the map sets", ["start", "end"], horizontal=True, key="ip_target")
    st.session_state.setdefault("ip_start", 0)
    st.session_state.setdefault("ip_end", default_end)
    start, end = st.session_state.ip_start, st.session_state.ip_end
else:
    if mode == "by class":
        st.info("This data set has no labels; choose the end points by index.")
    start = int(a.number_input("Start: test image index", 0, n - 1, 0, key="ip_i0"))
    end = int(b.number_input("End: test image index", 0, n - 1, default_end, key="ip_i1"))

kind = st.radio("Path", ["linear", "spherical"], horizontal=True, key="ip_kind",
                help="Spherical (slerp) follows a great circle, keeping the path at a typical distance from "
                     "the origin.")
steps = st.slider("Frames along the path", 5, 40, 16, key="ip_steps")

links.publish({"start": start, "end": end, "path": kind, "frames": steps})
path = interpolate(enc.mu[start], enc.mu[end], steps, kind)
frames = decode(ck.model, path)
t = np.linspace(0, 1, steps)



def name_of(row: int) -> str:
    """What a test image is called in the title: its class, else its frame in the video, else its index."""
    if enc.labels is not None:
        return data.label_name(int(enc.labels[row]))
    return f"frame {int(enc.frames[row])}" if enc.frames is not None else str(row)


left, right = st.columns([2, 3])
with left:
    st.plotly_chart(image_frames(frames, t, title=f"{name_of(start)} → {name_of(end)}"),
                    key="ip_frames", config={"displayModeBar": False})
with right:
    coords, path_2d = pca_with_path(enc.mu, path)
    fig = latent_map(coords, np.arange(n), enc.labels, data.class_names, path=path_2d, height=460, frames=enc.frames,
                     title="the path on the map" + (" (PCA)" if ck.model_config.latent_dim > 2 else ""))
    if mode == "on the map":
        fig.update_layout(dragmode="zoom")  # Streamlit selects a clicked point only outside the lasso and box modes
    event = st.plotly_chart(fig, key="ip_map", on_select="rerun" if mode == "on the map" else "ignore",
                            selection_mode="points")
    if mode == "on the map" and event and event.selection.points:
        clicked = int(event.selection.points[0]["customdata"])
        key = "ip_start" if target == "start" else "ip_end"
        if st.session_state[key] != clicked:
            st.session_state[key] = clicked
            st.rerun()

st.subheader("The whole path")
show_images(np.concatenate([enc.images(start), frames, enc.images(end)]), ncols=steps + 2,
            caption="original start · decoded path · original end", target=56, download=f"path-{start}-{end}-{kind}")
st.download_button("GIF of the path", partial(gif_bytes, frames), file_name=f"interpolation-{start}-{end}-{kind}.gif",
                   mime="image/gif", key="ip_gif", on_click="ignore", icon=":material/animated_images:")

explain("Why interpolate in the latent space?", """
The decoder p(x|z) maps every point z to an image, not only the posterior means of the training set.
Walking from one image's code to another's shows whether the space between them decodes to plausible
images: a smooth VAE latent space (kept smooth by the KL term of eq. 7, which asks every q(z|x) to
overlap the prior) morphs one digit into another, or one expression of a face into the next. Linear
paths cut through the middle; in many dimensions the prior's mass sits on a shell, and the spherical path
(slerp) stays on it.
""")
