"""Compare: two checkpoints' maps in one frame, with linked selection, and one z through both decoders."""
from __future__ import annotations

import numpy as np
import streamlit as st

from vae.checkpoint import Checkpoint
from vae.latent import decode, prior_samples, reconstruct
from vae.projections import aligned_maps

from . import state
from .figures.maps import latent_map
from .widgets import show_images

SELECTED = "cmp_selected"  # rows chosen on either map, shared by both
SHOWN = 12


@st.cache_data(max_entries=16, show_spinner="Aligning the maps…")
def _aligned(sha_ref: str, sha_other: str, _mu_ref: np.ndarray, _mu_other: np.ndarray):
    return aligned_maps(_mu_ref, _mu_other)


def _selection(event) -> list[int]:
    points = event.selection.points if event else []
    return [int(p["customdata"]) for p in points if "customdata" in p]


def render(cks: dict[str, Checkpoint]) -> None:
    labels = list(cks)
    c1, c2 = st.columns(2)
    ref_label = c1.selectbox("Reference map", labels, index=0, key="cmp_ref")
    others = [label for label in labels if label != ref_label]
    other_label = c2.selectbox("Aligned to it", others, index=0, key="cmp_other")
    ref, other = cks[ref_label], cks[other_label]
    data = state.data_or_message(ref)
    if data is None or state.data_or_message(other) is None:
        return
    enc_ref, enc_other = state.encoding(ref, "test"), state.encoding(other, "test")
    maps = _aligned(ref.sha256, other.sha256, enc_ref.mu, enc_other.mu)
    st.caption(f"Aligned by {maps.method}; {maps.residual:.0%} of the reference's spread is left unexplained "
               "(0% would be the same layout up to rotation). Choose points on either map: the same images are "
               "circled on both.")
    pair = (ref.sha256, other.sha256)
    if st.session_state.get(f"{SELECTED}_pair", pair) != pair:  # rows of another pair's test set mean nothing here
        st.session_state[SELECTED] = []
    st.session_state[f"{SELECTED}_pair"] = pair
    n_rows = len(enc_ref.mu)
    selected = np.asarray([r for r in st.session_state.get(SELECTED, []) if 0 <= r < n_rows], dtype=np.int64)
    index = np.arange(len(maps.reference))
    left, right = st.columns(2)
    events = {}
    for col, label, coords, enc, key in ((left, ref_label, maps.reference, enc_ref, "cmp_map_ref"),
                                         (right, other_label, maps.other, enc_other, "cmp_map_other")):
        fig = latent_map(coords, index, enc.labels, data.class_names, height=460, title=label,
                         highlight=coords[selected] if len(selected) else None, frames=enc.frames)
        events[key] = col.plotly_chart(fig, key=key, on_select="rerun", selection_mode=("points", "box", "lasso"))
    changed = False
    for key in ("cmp_map_ref", "cmp_map_other"):  # a map whose own selection changed sets the shared one
        rows = _selection(events[key])
        if rows != st.session_state.get(f"{key}_seen", []):
            st.session_state[f"{key}_seen"] = rows
            if rows:
                st.session_state[SELECTED], changed = rows, True
    if changed:
        st.rerun()
    if len(selected):
        _show_selected(ref_label, other_label, ref, other, enc_ref, selected)
    _same_z(ref_label, other_label, ref, other, maps)


def _show_selected(ref_label, other_label, ref, other, enc_ref, selected) -> None:
    rows = selected if len(selected) <= SHOWN else selected[np.linspace(0, len(selected) - 1, SHOWN).astype(int)]
    x = enc_ref.images(rows)
    st.markdown(f"**{len(selected)} selected**: originals, then reconstructed by {ref_label}, then by {other_label}")
    show_images(np.concatenate([x, reconstruct(ref.model, x), reconstruct(other.model, x)]), ncols=len(rows),
                target=56)
    if st.button("Clear the selection", key="cmp_clear"):
        st.session_state[SELECTED] = []
        st.rerun()


def _same_z(ref_label, other_label, ref, other, maps) -> None:
    st.markdown("**One z through both decoders**")
    seed = int(st.number_input("Seed for z ~ N(0, I) in the reference's latent space", 0, 10**6, 0, key="cmp_seed"))
    z = np.random.default_rng(seed).standard_normal((10, ref.model_config.latent_dim)).astype(np.float32)
    if maps.latent_alignment is None:
        st.info(f"The latent sizes differ ({ref.model_config.latent_dim} and {other.model_config.latent_dim}), so "
                "no z means the same thing to both decoders; each decodes its own prior samples instead.")
        show_images(prior_samples(ref.model, 10, seed=seed), ncols=10, caption=ref_label, target=56)
        show_images(prior_samples(other.model, 10, seed=seed), ncols=10, caption=other_label, target=56)
        return
    z_other = maps.latent_alignment.invert(z).astype(np.float32)  # the reference's z, in the other's frame
    show_images(np.concatenate([decode(ref.model, z), decode(other.model, z_other), decode(other.model, z)]),
                ncols=10, target=56, caption=f"top: {ref_label} decodes z · middle: {other_label} decodes the same z "
                f"rotated into its frame · bottom: {other_label} decodes z unrotated")


def same_z_unaligned(cks: dict[str, Checkpoint]) -> None:
    """Models of different data sets cannot be aligned (no shared images), but one z still goes through each."""
    st.markdown("**The same z through each decoder**")
    dims = {label: ck.model_config.latent_dim for label, ck in cks.items()}
    if len(set(dims.values())) > 1:
        st.info("The same z can only be decoded by models with the same latent size; here: "
                + ", ".join(f"{label} has {d}" for label, d in dims.items()) + ".")
        return
    seed = int(st.number_input("Seed for z ~ N(0, I)", 0, 10**6, 0, key="cmp_seed"))
    for label, ck in cks.items():
        show_images(prior_samples(ck.model, 10, seed=seed), ncols=10, caption=label, target=56)
