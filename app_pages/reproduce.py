"""Paper figures: figure 2 (the lower bound against training samples, per latent size) and figure 4
(the learned 2-D manifold) of Kingma & Welling (2013), reproduced by ordinary runs in the runs folder."""

import pandas as pd
import streamlit as st

from ui import state
from ui.figures.reproduction import figure2
from ui.widgets import explain, fail
from vae import reproduce as rp
from vae.checkpoint import CheckpointError
from vae.config import PRESETS, ConfigError
from vae.data import DataError, available_datasets, load_dataset
from vae.precision import FIXED_DECIMALS, format_bound
from vae.runs import RunError

BUDGETS = [1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 1e8, 2e8]
SIZES = [2, 3, 5, 10, 20, 50, 200]


def start_form() -> None:
    """Settings of a new reproduction; one background job per latent size."""
    st.subheader("Start a reproduction")
    names = [d["name"] for d in available_datasets() if d["available"]]
    c1, c2, c3, c4 = st.columns(4)
    dataset = c1.selectbox("Data set", names, index=names.index("mnist") if "mnist" in names else 0, key="rp_data")
    dims = c2.multiselect("Latent sizes Nz", SIZES, default=list(rp.paper_latent_dims(dataset)),
                          key=f"rp_dims_{dataset}")
    budget = c3.select_slider("Training samples per size", BUDGETS, 1e6, format_func=rp.short, key="rp_budget")
    preset = c4.radio("Preset", ["paper", *(p for p in PRESETS if p != "paper")], key="rp_preset", horizontal=True,
                      help="paper: 500 tanh units, Adagrad (section 5); default: this project's 400 relu units, Adam")
    binarize = c4.radio("Binarise", ["none", "dynamic"], key="rp_bin", horizontal=True,
                        disabled=dataset in rp.CONTINUOUS_DATASETS,
                        help="none: grey pixels as Bernoulli targets; dynamic: a fresh binary image each step "
                             "(Frey Face has a Gaussian decoder: never binarised)")
    binarize = "none" if dataset in rp.CONTINUOUS_DATASETS else binarize
    algorithm = c3.radio("Algorithm", ["aevb", "wake-sleep"], key="rp_algorithm", horizontal=True,
                         help="aevb: the paper's method; wake-sleep: the baseline figure 2 compares it with")
    fig4 = c1.checkbox("Also figure 4 (Nz = 2)", True, key="rp_fig4")
    try:
        plans = [rp.Plan("fig2", dataset, tuple(dims), budget, preset, binarize, algorithm)] if dims else []
        plans += [rp.Plan("fig4", dataset, (rp.FIG4_LATENT_DIM,), budget, preset, binarize, algorithm)] if fig4 else []
    except ConfigError as err:
        fail(str(err))
        return
    minutes = sum(p.expected_seconds() for p in plans) / 60
    st.caption(f"Expected time: about {minutes:,.0f} min on one core ({len(dims) + fig4} sizes one after another, "
               f"~{rp.SAMPLES_PER_S_ONE_CORE[preset]:,} samples/s each as measured on a 2-core development machine; "
               "the paper ran to 2e8 samples).")
    if not st.button("Start reproduction", type="primary", disabled=not plans, key="rp_start"):
        return
    try:
        with st.spinner("Loading the data set…"):
            n_train = len(load_dataset(dataset).x_train)
        registry, owner = state.registry(), state.session_id()

        def submit(spec) -> int:  # the job's place in the shared queue, 0 when it started
            return registry.submit(spec, owner).queue_position

        for plan in plans:
            for line in rp.submit_plan(plan, registry.runs_root, n_train, submit=submit):
                st.write(line)
        st.session_state.pop(f"rp_watch_{dataset}", None)  # show the new one
    except (DataError, ConfigError, RunError, OSError) as err:
        fail(str(err))


def progress(manifest: dict) -> None:
    """One line per latent size that is queued or training."""
    for key, size in manifest.get("sizes", {}).items():
        job = state.registry().active_for(size["run"])
        if job is not None:
            text = (f"queued, place {job.queue_position}" if job.state == "queued" else
                    f"{job.progress:.0%} of {rp.short(size['budget'])} samples, {job.samples_per_s:,.0f} samples/s")
            st.progress(job.progress, text=f"Nz = {key}: {text}")


def training(manifests: list[dict]) -> bool:
    registry = state.registry()
    return any(registry.active_for(s["run"]) for m in manifests for s in m["sizes"].values())


def figure2_view(dataset: str, names: list[str]) -> None:
    """One data set's figure 2 from the chosen reproductions (AEVB and wake-sleep overlaid), redrawn from the
    runs' metrics while their jobs train (never from the worker thread)."""
    root = state.settings().runs_root
    manifests = [rp.read_manifest(rp.reproduction_dir(root, name) / rp.MANIFEST) for name in names]
    for manifest in manifests:
        progress(manifest)
    busy = training(rp.list_reproductions(root))  # figure 4's run too
    series = [s for m in manifests for s in rp.figure_series(root, m)]
    dims = sorted({int(k) for m in manifests for k in m.get("sizes", {})})
    st.plotly_chart(figure2(series, dims, dataset), key=f"rp_fig2_{dataset}")
    reference = () if dataset in rp.CONTINUOUS_DATASETS else rp.PAPER_FIG2_MNIST
    table = pd.DataFrame(rp.comparison(series, reference=reference)).dropna(axis=1, how="all")
    st.dataframe(table.round(FIXED_DECIMALS), hide_index=True)  # logged bounds have no SE: vae.precision
    was = st.session_state.get(f"rp_busy_{dataset}")
    st.session_state[f"rp_busy_{dataset}"] = busy
    if was and not busy:
        st.rerun(scope="app")  # finished runs appear in the sidebar's model library at once


def describe(m: dict) -> str:
    return f"{m['name']} ({m['algorithm']}, {m['preset']} preset, binarise: {m['binarize']})"


st.header("Paper figures")
if not state.settings().read_only:
    start_form()

found = rp.list_reproductions(state.settings().runs_root)
st.subheader("Figure 2: the lower bound against training samples evaluated")
fig2s = {m["name"]: m for m in found if m["figure"] == "fig2"}
if not fig2s:
    st.info("No figure 2 reproduction in the runs folder yet; the markers are the paper's values. Start one above "
            "or run `python -m vae reproduce fig2 --dataset mnist --out runs`.")
    st.plotly_chart(figure2([], []), key="rp_fig2_empty")
datasets = sorted({m["dataset"] for m in fig2s.values()}, key=lambda d: (d in rp.CONTINUOUS_DATASETS, d))
for dataset in datasets:  # MNIST's panels first, then Frey Face's, as in the paper
    mine = [n for n, m in fig2s.items() if m["dataset"] == dataset]
    st.markdown(f"**{dataset}**" + (": a Gaussian decoder, so the bound is a density (see the note below)"
                                    if dataset in rp.CONTINUOUS_DATASETS else ""))
    # By default the newest reproduction of each algorithm: figure 2 draws AEVB beside wake-sleep.
    newest = list({fig2s[n]["algorithm"]: n for n in reversed(mine)}.values())
    names = st.multiselect("Reproductions", mine, default=newest, key=f"rp_watch_{dataset}",
                           format_func=lambda n: describe(fig2s[n]))
    if names:
        st.fragment(figure2_view, run_every=2.0 if training(found) else None)(dataset, names)

st.subheader("Figure 4: the learned 2-D manifold")
fig4s = [m for m in found if m["figure"] == "fig4"]
if not fig4s:
    st.info("No figure 4 reproduction yet: tick it above or run "
            "`python -m vae reproduce fig4 --dataset mnist --out runs`.")
columns = st.columns(2) if fig4s else []
for i, m in enumerate(fig4s):
    column = columns[i % 2]
    run = next(iter(m["sizes"].values()))["run"]
    try:
        ck = state.open_checkpoint(f"run:{run}")
    except CheckpointError:
        column.caption(f"{m['name']}: its run {run} has not finished an epoch yet.")
        continue
    bound = format_bound(ck.summary.get("test_elbo", float("nan")), unit="nats")  # logged: no SE, vae.precision
    column.image(rp.manifold_picture(ck.model, 20), output_format="PNG", caption=(
        f"{m['name']}: {m['dataset']}, {m['algorithm']}, {m['preset']} preset, binarise {m['binarize']}, "
        f"{ck.summary.get('epochs', '?')} epochs, test bound {bound}"))

explain("What does figure 2 show?", """
Figure 2 of Kingma & Welling (2013) plots the **lower bound** L (eq. 3, estimated with SGVB estimator B,
eq. 7) against the number of **training samples evaluated**, on a log axis, for latent sizes Nz = 3 to 200:
train dashed, test solid here; the diamonds are values read by eye off the paper's MNIST panels. The bound
rises fast at first and then slowly for hundreds of millions of samples; larger latents reach a higher bound,
and the paper notes that more latent dimensions did not cause overfitting, because the KL term (the prior)
regularises them. The paper does not say how it binarised MNIST. With **none**, grey pixels are Bernoulli
targets: for a given decoder output that score equals the expected log-likelihood of a random binarisation of
the image, so it lands near the **dynamic** curves, but it is not a likelihood of the grey image itself, so
only binarised runs compare strictly with the diamonds. The train curve is the mean over each epoch's
minibatches (it lags the model a little); the test curve is evaluated at each epoch's end. Figure 4 decodes a
grid on the unit square mapped through the Gaussian inverse CDF.

**Frey Face** (the paper's second panel row, Nz = 2 to 20) has grey photographs, so its decoder is Gaussian
(appendix C.2: a mean through a sigmoid and a log variance per pixel) and its bound is a log **density** of
continuous pixels in nats: it is usually *positive* (a density can exceed 1 where the model is sure of a
pixel) and is not comparable with MNIST's Bernoulli bound. Bits per dimension would need the pixels
discretised (the 256 grey levels and a bin width of 1/256), which the paper did not do, so none are shown.
The paper used 200 hidden units here "to prevent overfitting, since it is a considerably smaller data set".
We have not read values off the paper's Frey panels, so that panel has no diamonds (docs/reproduction.md).

**Wake-sleep** (Hinton, Dayan, Frey & Neal 1995), dotted, is the baseline figure 2 compares with: the same
decoder and the same encoder, used as the recognition model. Its wake phase fits the decoder to (x, z) with
z ~ q(z|x); its sleep phase fits the encoder to dreamed pairs, z ~ p(z) and x ~ p(x|z). Its bound is
estimated exactly as AEVB's (estimator B on the same images), but its recognition model does not climb that
bound: the sleep phase makes q(z|x) match p(z|x) by minimising KL(p(z|x) || q(z|x)), the reverse of the
KL(q || p) inside the bound, and it averages over the model's own dreams rather than over the data. AEVB
follows the gradient of the bound itself for both networks.
""")
