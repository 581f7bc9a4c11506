"""Samples: prior samples with a temperature, the manifold grid of the paper's figure 4, traversals."""
import numpy as np
import streamlit as st

from ui import links, notes, state
from ui.widgets import explain, show_images
from vae.latent import dims_by_kl, manifold_grid, prior_samples, traversals
from vae.metrics import kl_per_dim

st.header("Samples")
ck = state.current_checkpoint()
if ck is None:
    st.stop()
model, d = ck.model, ck.model_config.latent_dim

notes.beta()
LINKS = [links.Link("temperature", "s_temp", links.float_in(0.1, 2.0, 0.05)),
         links.Link("seed", "s_seed", links.int_in(0, 10**6)), links.Link("side", "s_side", links.int_in(4, 12))]
links.adopt(LINKS)
st.subheader("Samples from the prior")
c1, c2, c3 = st.columns(3)
temperature = c1.slider("Temperature", 0.1, 2.0, 1.0, 0.05, key="s_temp",
                        help="z ~ N(0, t² I): below 1, cleaner and more alike; above 1, stranger.")
seed = int(c2.number_input("Seed", 0, 10**6, 0, key="s_seed"))
side = c3.slider("Grid side", 4, 12, 8, key="s_side")
links.publish({"temperature": temperature, "seed": seed, "side": side})
show_images(prior_samples(model, side * side, temperature=temperature, seed=seed), ncols=side, target=64,
            download=f"samples-t{temperature:g}-seed{seed}")

# KL per dimension orders the traversals and picks the manifold's default axes.
data = state.data_or_message(ck)
enc = state.encoding(ck, "test") if data is not None else None
kl = kl_per_dim(enc.mu, enc.logvar) if enc is not None else np.zeros(d)
order = dims_by_kl(kl)

st.subheader("The learned manifold (figure 4 of the paper)")
if d < 2:
    st.info("The manifold grid needs a latent of at least two dimensions; this model has one.")
else:
    c1, c2, c3 = st.columns(3)
    n = c1.slider("Grid side", 5, 25, 15, key="m_side")
    dx = c2.selectbox("Horizontal dimension", range(d), index=order[0], key="m_dx") if d > 2 else 0
    dy = c3.selectbox("Vertical dimension", range(d), index=order[1], key="m_dy") if d > 2 else 1
    base = None
    if d > 2 and enc is not None:
        through = st.number_input("Slice through the posterior mean of test image (-1 = the origin)", -1,
                                  len(enc.mu) - 1, -1, key="m_base")
        base = enc.mu[through] if through >= 0 else None
        st.caption("A 2-D slice of a larger latent: the other dimensions stay at the chosen point.")
    if dx == dy:
        st.warning("Choose two different dimensions.")
    else:
        images, _ = manifold_grid(model, n, dims=(dx, dy), base=base)
        show_images(images, target=48, download=f"manifold-z{dx}-z{dy}")

st.subheader("Traversals, most informative dimension first")
c1, c2 = st.columns(2)
rows = c1.slider("Dimensions shown", 1, min(d, 16), min(d, 8), key="t_rows") if d > 1 else 1
span = c2.slider("Span (prior standard deviations)", 1.0, 4.0, 3.0, 0.5, key="t_span")
dims = order[:rows]
show_images(traversals(model, np.zeros(d, np.float32), dims, span=span), target=56,
            caption="rows: " + ", ".join(f"z{k} (KL {kl[k]:.2f} nats)" for k in dims), download="traversals")

explain("What are these pictures?", """
A VAE is a generative model: z ~ p(z) = N(0, I), then x ~ p(x|z). **Prior samples** decode random z.
The **manifold grid** reproduces figure 4 of Kingma & Welling (2013): a regular grid on the unit square
is mapped through the Gaussian inverse CDF, so equal areas of the grid hold equal prior mass, and
decoded. **Traversals** move one coordinate of z from -span to +span with the others at 0; dimensions
with near-zero KL (appendix B's KL per dimension) are ignored by the decoder: the posterior has
collapsed onto the prior there.
""")
