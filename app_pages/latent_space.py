"""Latent space: the encoded data set as a 2-D map; click or lasso points to see them reconstructed."""
from functools import partial

import numpy as np
import streamlit as st

from ui import diagnostics, links, notes, state
from ui.figures.maps import latent_map
from ui.projections import NAMES, projection_or_pca
from ui.shared_figures import shared_figure
from ui.widgets import explain, fail, show_images
from vae.export import coordinates_csv
from vae.latent import reconstruct

SHOWN = 32  # images shown for a selection

st.header("Latent space")
ck = state.current_checkpoint()
data = state.data_or_message(ck) if ck else None
if ck is None or data is None:
    st.stop()

d = ck.model_config.latent_dim
links.adopt([links.Link("points", "map_split", links.one_of(*state.SPLITS)),
             links.Link("projection", "map_method",
                        links.one_of(*(["latent"] if d <= 2 else ["pca", "umap", "tsne"])))])
left, mid, right = st.columns(3)
split = left.radio("Points", state.SPLITS, horizontal=True, key="map_split",
                   help="Which images to encode: the test split, the training split, or both.")
methods = ["latent"] if d <= 2 else ["pca", "umap", "tsne"]
method = mid.radio("Projection", methods, horizontal=True, key="map_method", format_func=NAMES.get)
show_std = right.toggle("Posterior std (error bars)", key="map_std", disabled=d != 2,
                        help="Each point's posterior standard deviation, for 2-D latents.")

links.publish({"points": split, "projection": method})
enc = state.encoding(ck, split)
coords, index, note = projection_or_pca(ck, enc, method, split)
if note:
    st.info(note)
std = np.exp(0.5 * enc.logvar) if show_std and d == 2 else None
drawn = method if note is None else "pca"  # what the map shows while a slow projection is computed
fig = shared_figure("latent_map", (ck.sha256, split, drawn, std is not None, len(index)), lambda: latent_map(
    coords, index, enc.labels, data.class_names, std=std, frames=enc.frames,
    title=f"{len(index):,} {split} images, posterior means ({NAMES[drawn]})"))
event = st.plotly_chart(fig, key="latent_map", on_select="rerun", selection_mode=("points", "box", "lasso"))
# A callable: the CSV (11 MB for 70k points in 16-D) is made when the button is pressed, not on every rerun.
st.download_button("Coordinates (CSV)", partial(coordinates_csv, index, coords, enc.mu, enc.labels, data.label_name,
                                                enc.frames),
                   file_name=f"{ck.label}-{split}-{method}.csv", mime="text/csv", key="map_csv", on_click="ignore",
                   icon=":material/download:", help="Each point's index, label, map position and posterior mean.")

chosen = [int(p["customdata"]) for p in (event.selection.points if event else []) if "customdata" in p]
if chosen:
    total = len(chosen)
    if total > SHOWN:  # an even sample across the selection (it arrives grouped by class)
        chosen = [chosen[i] for i in np.linspace(0, total - 1, SHOWN).astype(int)]
    st.subheader(f"{total} selected" + (f", {SHOWN} shown" if total > SHOWN else "")
                 + ": originals (top) and reconstructions (bottom)")
    x = enc.images(chosen)
    show_images(np.concatenate([x, reconstruct(ck.model, x)]), ncols=len(chosen))
    if enc.labels is not None:
        st.caption("Labels: " + ", ".join(data.label_name(int(enc.labels[i])) for i in chosen))
    elif enc.frames is not None:
        st.caption("Frames: " + ", ".join(str(int(enc.frames[i])) for i in chosen))
else:
    st.caption("Click a point, or drag a box or lasso on the map, to see those images and their reconstructions.")

if d > 2 and method == "latent":
    fail("This latent has more than two dimensions; choose a projection.")

st.subheader("Diagnostics")
notes.elbo_terms()
diagnostics.panel(ck, state.encoding(ck, "test"))

explain("What is this map?", """
Each point is one image x, placed at the mean of its approximate posterior q(z|x) = N(mu, diag sigma^2)
(the encoder of section 2 and appendix C of Kingma & Welling, 2013). The KL term of the ELBO (eq. 7)
pulls every posterior towards the prior N(0, I), so the map stays centred and compact; the
reconstruction term spreads images apart so that each can be decoded back. Classes that form
separate clusters were told apart without labels. With a larger latent, PCA, UMAP or t-SNE squash it
to two dimensions: distances in those pictures are only roughly faithful.

Frey Face has no labels. Its 1,965 images are the frames of one video, so the map is coloured by frame
number instead. Nobody told the encoder which frames follow each other, yet neighbouring frames (close
colours) tend to land close together: the face changes pose and expression slowly, so consecutive frames
are similar images, and similar images get similar codes.
""")
