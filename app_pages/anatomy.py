"""ELBO anatomy: one image through the model, x -> encoder -> (mu, sigma) -> z = mu + sigma * eps -> decoder -> p(x|z),
each stage with this image's numbers, the bound they add up to, and its estimators beside it (vae/anatomy.py)."""
import numpy as np
import pandas as pd
import streamlit as st

from ui import links, notes, state
from ui.canvas import draw_canvas
from ui.figures.anatomy import estimates_figure, kl_figure, pixel_figure, posterior_figure
from ui.figures.maps import latent_map
from ui.widgets import fail, show_images
from vae.anatomy import MAX_L, anatomy, vector_text
from vae.config import ConfigError
from vae.derived import YOUR_INPUT_K
from vae.inputs import DIGIT_SETS, InputError, prepare_input, read_image
from vae.projections import pca_with_path

WAYS = {"index": "By index", "class": "By class", "map": "On the map", "draw": "Drawn"}
K_CHOICES = (1, 10, 100, 1000)  # K = 1 is the ELBO itself (estimator A, one draw)
MAX_DRAW = 10**6  # the "New ε" counter, which seeds every random number on the page


def test_image(enc, data, row: int) -> str:
    if enc.labels is not None:
        return f"test image {row} (a {data.label_name(int(enc.labels[row]))})"
    return f"test image {row}" + (f" (frame {int(enc.frames[row])})" if enc.frames is not None else "")


def by_class(enc, data, image: int) -> int:
    classes = sorted(set(int(c) for c in enc.labels))
    st.session_state.setdefault("an_class", int(enc.labels[image]))
    left, right = st.columns(2)
    cls = left.selectbox("Class", classes, format_func=data.label_name, key="an_class")
    members = np.flatnonzero(enc.labels == cls)
    st.session_state.setdefault("an_nth", int(np.searchsorted(members, image)) if image in members else 0)
    st.session_state.an_nth = min(st.session_state.an_nth, len(members) - 1)  # another class may have fewer
    which = right.number_input(f"Which {data.label_name(cls)} (0 = first)", 0, len(members) - 1, key="an_nth")
    return int(members[which])


def on_the_map(ck, enc, data, image: int) -> int:
    """The test images' posterior means; a click on one makes it the page's image (and reruns)."""
    coords, mark = pca_with_path(enc.mu, enc.mu[[image]])
    title = "Click a test image" + (" (PCA of the posterior means)" if ck.model_config.latent_dim > 2 else "")
    fig = latent_map(coords, np.arange(len(coords)), enc.labels, data.class_names, highlight=mark, height=460,
                     frames=enc.frames, title=title)
    fig.update_layout(dragmode="zoom")  # Streamlit selects a clicked point only outside the lasso and box modes
    event = st.plotly_chart(fig, key="an_map", on_select="rerun", selection_mode="points")
    clicked = next((int(p["customdata"]) for p in (event.selection.points if event else []) if "customdata" in p),
                   None)
    if clicked is not None and clicked != image:
        st.session_state.an_image = clicked
        st.rerun()
    return image


def drawn(ck) -> np.ndarray | None:
    name = (ck.dataset or {}).get("name")
    if name not in DIGIT_SETS:
        st.info(f"Drawing is offered for digit models only, and this one learned {name}: choose a test image.")
        return None
    png = draw_canvas("an_canvas")
    if png is None:
        st.info("Draw a digit on the canvas to take it through the model.")
        return None
    return prepare_input(read_image(png, "the drawing"), ck.model_config.image_shape, "the drawing")


def choose(ck, enc, data, way: str) -> tuple[np.ndarray | None, str, int | None]:
    """(the image, what to call it, its test index: None for a drawing)."""
    image = st.session_state.setdefault("an_image", 0)
    if way == "draw":
        return drawn(ck), "your drawing", None
    if way == "map":
        row = on_the_map(ck, enc, data, image)
    elif way == "class" and enc.labels is not None:
        row = by_class(enc, data, image)
    else:
        if way == "class":
            st.info(f"This data set ({(ck.dataset or {}).get('name')}) has no labels; choose its image by index "
                    "or on the map.")
        st.session_state.setdefault("an_index", image)
        row = int(st.number_input("Test image index", 0, len(enc.mu) - 1, key="an_index"))
    st.session_state.an_image = row
    return enc.images(row)[0], test_image(enc, data, row), row


def stage(col, title: str, lines=(), image=None, caption: str = "") -> None:
    with col:
        st.markdown(title)
        if image is not None:
            show_images(image[None], target=112, caption=caption)
        for line in lines:
            st.caption(line)


def pipeline(a, what: str, likelihood: str) -> None:
    """x -> encoder -> (mu, sigma) -> z -> decoder -> p(x|z), each with this image's numbers."""
    cols = st.columns(5)
    stage(cols[0], "**x** →", image=a.x, caption=what)
    stage(cols[1], "**encoder** q(z|x) →", [f"μ = {vector_text(a.mu)}", f"σ = {vector_text(a.sigma)}"])
    stage(cols[2], "**z = μ + σ · ε** →", [f"ε = {vector_text(a.eps)}", f"z = {vector_text(a.z)}"])
    stage(cols[3], "**decoder**: the mean of p(x|z)", image=a.decoded, caption="E[x|z]")
    stage(cols[4], "**a sample** of p(x|z)", image=a.sample,
          caption="Bernoulli pixels, 0 or 1" if likelihood == "bernoulli" else "mean + σ · noise, clipped to [0, 1]")


def next_draw() -> None:
    st.session_state.an_eps = (st.session_state.an_eps + 1) % (MAX_DRAW + 1)


st.header("ELBO anatomy")
st.caption("One image through the model, stage by stage (section 2.4 and eq. 3 of Kingma & Welling, 2013): "
           "what each stage makes of this image, and how the bound adds up.")
ck = state.current_checkpoint()
data = state.data_or_message(ck) if ck else None
if ck is None or data is None:
    notes.anatomy()
    st.stop()
enc = state.encoding(ck, "test")
links.adopt([links.Link("way", "an_way", links.one_of(*WAYS)),
             links.Link("image", "an_image", links.int_in(0, len(enc) - 1)),
             links.Link("eps", "an_eps", links.int_in(0, MAX_DRAW)), links.Link("L", "an_l", links.int_in(1, MAX_L)),
             links.Link("K", "an_k", lambda raw: K_CHOICES[K_CHOICES.index(int(raw))])])
way = st.radio("Choose the image", list(WAYS), format_func=WAYS.get, horizontal=True, key="an_way")
try:
    x, what, row = choose(ck, enc, data, way)
except InputError as err:
    fail(str(err))
    x, what, row = None, "", None

left, mid, right = st.columns([1, 2, 2])
draw = st.session_state.setdefault("an_eps", 0)
left.button("New ε", key="an_new_eps", on_click=next_draw,
            help="Draw another ε ~ N(0, I): z, the sample and the estimates move; μ and σ depend on x alone.")
left.caption(f"ε draw {draw}")
n_samples = int(mid.slider("Draws L for estimators A and B", 1, MAX_L, 100, key="an_l"))
k = int(right.select_slider("Importance samples K", K_CHOICES, YOUR_INPUT_K, key="an_k"))
links.publish({"way": way, "eps": draw, "L": n_samples, "K": k} | ({"image": row} if row is not None else {}))
if row is None:
    st.query_params.pop("image", None)
    st.caption(":material/link_off: A drawing cannot travel in a link: the address keeps the model and settings only.")
if x is None:
    notes.anatomy()
    st.stop()
try:
    a = anatomy(ck.model, x, seed=draw, n_samples=n_samples, k=k)
except ConfigError as err:
    fail(str(err)[0].upper() + str(err)[1:])
    notes.anatomy()
    st.stop()

st.subheader("The pipeline")
pipeline(a, what, ck.model_config.likelihood)
dims = a.shown_dims()
if len(dims) < len(a.mu):
    st.caption(f"The {len(dims)} of {len(a.mu)} dimensions with the largest KL for this image are drawn.")
left, right = st.columns(2)
left.plotly_chart(posterior_figure(a, dims), key="an_posterior")
right.plotly_chart(kl_figure(a, dims), key="an_kl")

st.subheader("The bound, term by term")
left, right = st.columns(2)
left.plotly_chart(pixel_figure(a), key="an_pixels")
right.markdown(f"**ELBO for this ε** = log p(x|z) − KL = {a.recon:.2f} − {a.kl:.2f} = **{a.elbo:.2f} nats** "
               "(eq. 3's bound, estimated by eq. 7 with L = 1)")
right.plotly_chart(estimates_figure(a), key="an_estimates")
right.table(pd.DataFrame(a.table()))
notes.anatomy()
