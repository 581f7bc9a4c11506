"""Compare: two or more checkpoints: curves, a metrics table, diagnostics, aligned maps with linked selection,
one z through both decoders."""
import pandas as pd
import streamlit as st

from ui import aligned, diagnostics, state
from ui.background import cached_or_pending, rerun_when_done, task
from ui.figures.curves import compare_curves
from ui.widgets import distinct, explain, fail
from vae.checkpoint import CheckpointError
from vae.compare import read_iw_estimate
from vae.data import DataError
from vae.derived import COMPARE_DEFAULTS
from vae.evaluate import evaluate_model
from vae.precision import format_bound

st.header("Compare checkpoints")
items = state.library()
default = list(items)[:2]
keys = st.multiselect("Checkpoints", list(items), default=default, format_func=items.get, key="cmp_keys")
if len(keys) < 2:
    st.info("Choose at least two checkpoints to compare.")
    st.stop()
labels = distinct([items[k] for k in keys])  # the figures and tables key on them
try:
    cks = {label: state.open_checkpoint(k) for label, k in zip(labels, keys, strict=True)}
except CheckpointError as err:
    fail(str(err))
    st.stop()

st.plotly_chart(compare_curves({label: ck.history for label, ck in cks.items()}), key="cmp_curves")

c1, c2 = st.columns(2)
# The defaults are vae.derived's: a bundled model ships its IW column for exactly these.
k = int(c1.select_slider("Importance samples K for the log-likelihood", [1, 10, 100, 500, 1000],
                         COMPARE_DEFAULTS["k"], key="cmp_k"))
n_points = int(c2.select_slider("Test images used", [100, 200, 500, 1000, 2000], COMPARE_DEFAULTS["n_points"],
                                key="cmp_n"))


@st.cache_data(max_entries=64, show_spinner=False)
def report(sha256: str, key: str, n_points: int) -> dict:
    """The quick columns (one ELBO pass); the IW column comes from the background worker."""
    ck = state.open_checkpoint(key)
    return evaluate_model(ck, state.dataset_for(ck), max_points=n_points)


def iw_estimate(ck, n: int, k: int):
    """(value, future): the IW column's number, or the background job computing it (K x N decoder passes
    would hold the page for seconds, and for a minute when a class shares the server)."""
    root = state.settings().runs_root
    return cached_or_pending(("iw-mean", ck.sha256, n, k), lambda: read_iw_estimate(root, ck.sha256, n, k),
                             task("iw-estimate", ck, n_points=n, k=k),
                             what=f"The IW log-likelihood of {ck.label}")


rows, pending = [], []
for key, label in zip(keys, labels, strict=True):
    ck = cks[label]
    try:
        r = report(ck.sha256, key, n_points)
    except DataError as err:
        rows.append({"checkpoint": label, "data set": ck.dataset.get("name"), "note": str(err)})
        continue
    iw, future = iw_estimate(ck, r["n_points"], k)
    pending += [future] if future is not None else []
    rows.append({"checkpoint": label, "data set": r["dataset"], "latent": ck.model_config.latent_dim,
                 "test ELBO (nats)": format_bound(r["test_elbo"], r["test_elbo_se"]),  # "-115.78 ± 0.04"
                 f"IW log-lik. (K={k}, N={r['n_points']})":
                     format_bound(iw["iw_log_likelihood"], iw["iw_log_likelihood_se"]) if iw else None,
                 # A Gaussian decoder's bound is a density over continuous pixels, not a count of bits: blank.
                 "bits/dim": r["bits_per_dim"] if ck.model_config.likelihood == "bernoulli" else None,
                 "active units": r["active_units"],
                 "parameters": r["n_parameters"]})
st.dataframe(pd.DataFrame(rows), hide_index=True)
iw_note = st.empty()  # always drawn, so that the elements below keep their places when the note goes
if pending:
    iw_note.caption(f"The IW log-likelihood (K = {k}) is being computed in the background, once per checkpoint "
                    "and setting, then cached; the column fills in by itself.")

st.subheader("Diagnostics")
pending += diagnostics.compare_panel(cks)

st.subheader("Aligned latent maps")
datasets = {label: ck.dataset.get("name") for label, ck in cks.items()}
if len(set(datasets.values())) > 1:
    st.info("Maps are aligned only for checkpoints trained on the same data set (alignment matches the same "
            "images in both); here: " + ", ".join(f"{label} on {name}" for label, name in datasets.items()) + ".")
    aligned.same_z_unaligned(cks)
else:
    aligned.render(cks)
if pending:
    rerun_when_done(*pending)  # one poller for every background number on the page

explain("Reading the table", """
The **ELBO** (eq. 3) is a lower bound on log p(x); the **importance-weighted** estimate with K samples
(Burda et al., 2015) is a tighter bound that approaches log p(x) as K grows: the gap between the two is
how far q(z|x) is from the true posterior. **Active units** count latent dimensions whose posterior
mean varies across images (covariance above 0.01); the rest carry no information. **Bits/dim** is the
negative ELBO divided by (pixels x ln 2), for Bernoulli decoders only: a Gaussian decoder's (Frey Face's)
bound is a density over continuous pixel values, often positive, and no number of bits without a
discretisation, so its cell stays empty. **±** is each estimate's Monte Carlo standard error on these
test images (another seed would move the number by about that much), and the digits stop where it does:
two checkpoints whose bounds differ by several of it really differ on this test set.
""")
