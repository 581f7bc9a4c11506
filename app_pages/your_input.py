"""Your input: draw a digit or upload an image; see where each model puts it, how it reconstructs it,
and how typical its likelihood is. Trains nothing, so read-only servers keep it (drawing only)."""
import numpy as np
import streamlit as st

from ui import state
from ui.background import cached_or_pending, rerun_when_done, task
from ui.canvas import draw_canvas
from ui.figures.maps import map_with_posterior
from ui.widgets import explain, fail, show_images
from vae.checkpoint import CheckpointError
from vae.data import BUILTIN_DATASETS
from vae.derived import YOUR_INPUT_K, read_reference_log_likelihoods
from vae.inputs import (
    DIGIT_SETS,
    InputError,
    input_log_likelihood,
    map_with_input,
    posterior_ellipse,
    prepare_input,
    read_image,
    verdict,
)
from vae.latent import reconstruct
from vae.metrics import posterior_stats
from vae.precision import format_bound


def reference_log_likelihoods(ck, k: int):
    """(values, future): the test images' IW log-likelihoods an input is ranked against, from the cache, or the
    background process computing them (0.6 s at K = 100, 6 s at K = 1000: too long for the page script)."""
    root = state.settings().runs_root
    return cached_or_pending(("iw-reference", ck.sha256, k), lambda: read_reference_log_likelihoods(root, ck.sha256, k),
                             task("iw-reference", ck, k=k), what="The test images' log-likelihoods")


def picture(read_only: bool) -> tuple[np.ndarray, str] | None:
    """The raw drawing or uploaded image and what to call it, or None while there is none."""
    source = st.radio("Input", ["Draw", "Upload a file"], horizontal=True, key="yi_source")
    if source == "Draw":
        png = draw_canvas("yi_canvas")
        return (read_image(png, "the drawing"), "the drawing") if png else None
    file = st.file_uploader("One image: PNG, JPEG, or a NumPy array (.npy)", type=["png", "jpg", "jpeg", "npy"],
                            key="yi_upload", disabled=read_only,
                            help="Dark ink on light paper or the other way round; any size up to 4096 pixels.")
    if read_only:  # `disabled` is only the browser's side: a crafted client could still send a file
        st.caption("Uploads are turned off on this server (read-only mode); draw instead.")
        return None
    return None if file is None else (read_image(file.getvalue(), file.name), file.name)


def second_model(ck) -> tuple[str, object] | None:
    items, own = state.library(), state.current_key()
    others = [None] + [k for k in items if k != own]
    key = st.selectbox("Also encode with", others, key="yi_second",
                       format_func=lambda k: "(only the sidebar's model)" if k is None else items[k])
    if key is None:
        return None
    try:
        other = state.open_checkpoint(key)
    except CheckpointError as err:
        fail(str(err))
        return None
    shape, want = other.model_config.image_shape, ck.model_config.image_shape
    if shape != want:
        st.info(f"{items[key]} takes {shape[0]}x{shape[1]} images but the sidebar's model takes "
                f"{want[0]}x{want[1]}; one prepared input cannot feed both, so only the sidebar's model is shown.")
        return None
    return key, other


def show_model(key: str, label: str, ck, x: np.ndarray | None, k: int, slot: int):
    """One model's view: the input's reconstruction, likelihood and verdict, and its posterior on the
    map of the test images (the map alone while there is no input yet)."""
    st.subheader(label)
    data = state.data_or_message(ck)
    own = None
    if x is not None:
        show_images(np.stack([x, reconstruct(ck.model, x[None])[0]]), ncols=2, target=112,
                    caption="The input as the model sees it (left) and its reconstruction (right)")
        own, se = input_log_likelihood(ck.model, x, k)
        st.metric(f"IW log-likelihood (K = {k})", format_bound(own, se, "nats"),
                  help="The mean of 8 independent estimates, ± its standard error.")
    if data is None:
        return None
    reference, pending = reference_log_likelihoods(ck, k)  # asked for before any input, so it is ready for one
    if own is not None and reference is not None:
        score = verdict(own, reference, k)
        (st.warning if score.unusual else st.success)(
            f"Its log-likelihood is {score.verdict} ({score.n_reference} test images, the same K).")
    elif own is not None and pending is not None:
        st.info("Ranking it against test images: their log-likelihoods are being computed in the background "
                "(once per model and K); the verdict appears here by itself.")
    enc = state.encoding(ck, "test")
    mu, logvar = posterior_stats(ck.model, x[None]) if x is not None else (enc.mu[:1], None)
    coords, centre, jacobian = map_with_input(enc.mu, mu[0])
    posterior = (centre, posterior_ellipse(centre, jacobian, logvar[0])) if x is not None else (None, None)
    title = ("Test images and your input" if x is not None else "Test images") + \
        (" (PCA)" if ck.model_config.latent_dim > 2 else "")
    st.plotly_chart(map_with_posterior(coords, enc.labels, data.class_names, *posterior, title=title,
                                       frames=enc.frames), key=f"yi_map_{slot}")
    return pending


def main() -> None:
    ck = state.current_checkpoint()
    if ck is None:
        st.info("No model yet: train one on the Train page.")
        return
    name = (ck.dataset or {}).get("name")
    if name in BUILTIN_DATASETS and name not in DIGIT_SETS:
        st.info(f"This model learned {name}, not digits, while this page prepares your drawing or image as the "
                "ink of a digit (cropped to its strokes and fitted into the model's frame), so expect the nearest "
                "of the model's own images back rather than a copy of yours.")
    left, right = st.columns([1, 1])
    with left:
        try:
            raw = picture(state.settings().read_only)
        except InputError as err:
            fail(str(err))
            raw = None
    with right:
        second = second_model(ck)
        k = int(st.select_slider("Importance samples K", [10, 100, 1000], YOUR_INPUT_K, key="yi_k",
                                 help="More samples tighten the bound on log p(x) and cost more time."))
    x = None
    if raw is None:
        st.info("Draw a digit on the canvas (or upload an image) to see where each model puts it.")
    else:
        try:
            x = prepare_input(raw[0], ck.model_config.image_shape, raw[1])
        except InputError as err:
            fail(str(err))
    labels = state.library()
    models = [(state.current_key(), ck)] + ([second] if second else [])
    pending = []
    for slot, (col, (key, model)) in enumerate(zip(st.columns(len(models)), models, strict=True)):
        with col:
            pending += [f for f in [show_model(key, labels[key], model, x, k, slot)] if f is not None]
    if pending:
        rerun_when_done(*pending)  # one poller for both models


st.header("Your input")
main()
explain("How is my input judged?", """
**Where it lands.** The encoder gives the approximate posterior q(z|x) = N(mu, diag sigma^2) of your
input (section 3, eq. 9 of Kingma & Welling, 2013), the distribution that eq. 4's reparameterisation
z = mu + sigma * eps samples from (eq. 10). The star is its mean mu, on the same map as the test images
(PCA for latents above 2-D); the outline is one posterior standard deviation, often smaller than the
star: the encoder is sure of where a clear digit goes. The reconstruction decodes mu.

**How likely it is.** The importance-weighted bound (Burda et al., 2015) averages K ratios
p(x, z_k) / q(z_k|x) with z_k ~ q(z|x): K = 1 is the ELBO (eq. 2-3), and the bound approaches log p(x)
as K grows. It is ranked against a few hundred test images with the same K.

**Why a low likelihood suggests an unusual input.** The model spends its probability on images like
its training data; an image far from them (noise, a blob, a letter) gets a much lower log p(x).
Caveats: the converse fails, since likelihood also rewards simple images, so a nearly blank image
or a thin stroke can score *higher* than real digits (Nalisnick et al., 2019); your drawing's stroke
width and smoothness differ from MNIST's scanned pen strokes, which lowers its score a little; and the
estimate is a lower bound, noisier for small K.
""")
