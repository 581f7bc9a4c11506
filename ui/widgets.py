"""Small pieces of page layout shared by several pages."""
from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from vae.checkpoint import Checkpoint
from vae.export import png_bytes
from vae.pictures import display_scale, tile, to_uint8, upscale


def show_images(images: np.ndarray, *, ncols: int | None = None, caption: str | None = None,
                target: int = 84, download: str | None = None) -> None:
    """A grid of images at a readable size: tiled, then enlarged nearest-neighbour (never blurred).
    `download` names a PNG file of the grid offered below it (without a rerun when clicked)."""
    images = np.asarray(images, np.float32)
    if images.size == 0:
        return
    grid = to_uint8(upscale(tile(images, ncols), display_scale(images.shape[-2], target)))
    # PNG, not Streamlit's default JPEG: pixel blocks must stay sharp.
    st.image(grid, caption=caption, output_format="PNG")
    if download:
        st.download_button("PNG", partial(png_bytes, grid), file_name=f"{download}.png", mime="image/png",
                           key=f"dl_{download}", on_click="ignore", icon=":material/download:", type="tertiary")


def describe(ck: Checkpoint) -> str:
    """One line that says where a model came from."""
    c, d, s = ck.model_config, ck.dataset or {}, ck.summary or {}
    test = s.get("test_elbo")
    elbo = f"test ELBO {test:.1f} nats" if isinstance(test, (int, float)) else "test ELBO unknown"
    hidden = "-".join(str(h) for h in c.hidden)
    return (f"{d.get('name', 'unknown data')} · {c.arch} {hidden} · latent {c.latent_dim} · "
            f"{c.likelihood} · {s.get('epochs', '?')} epochs · {elbo}")


def explain(title: str, text: str) -> None:
    """A collapsible teaching note, closed by default so it never crowds the view."""
    with st.expander(title, expanded=False):
        st.markdown(text)


def fail(message: str) -> None:
    """One clear sentence in the page, never a traceback."""
    st.error(message, icon="⚠️")


def distinct(labels: list[str]) -> list[str]:
    """Labels told apart where several are the same (two uploads of one file name): "a (1)", "a (2)"."""
    return [f"{label} ({labels[:i].count(label) + 1})" if labels.count(label) > 1 else label
            for i, label in enumerate(labels)]
