"""Estimator lab: for one batch, the gradient variance of SGVB estimators A and B, and the ELBO's spread, against L."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from ui import state
from ui.figures import FONT, PALETTE
from ui.widgets import explain, fail
from vae.estimators import DEFAULT_L_VALUES, check_study, study_batch, study_cell, summary_sentence, untrained_like
from vae.model import ConfigError

COLOURS = {"A": PALETTE[1], "B": PALETTE[0]}
WEIGHTS = {"trained": "Trained (this checkpoint)", "initial": "Untrained (the paper's N(0, 0.01²) initialisation)"}


def closing_note() -> None:
    explain("Estimators A and B, and what L does", r"""
The ELBO (eq. 3) is an expectation over $q_\phi(z|x)$; SGVB estimates it from $L$ noisy samples
$z_l = \mu + \sigma \odot \epsilon_l$, $\epsilon_l \sim \mathcal{N}(0, I)$ (eq. 10), and the optimiser follows
the gradient of that estimate. **Estimator A** (eq. 6) samples everything:

$$\tilde{\mathcal{L}}^A = \frac{1}{L}\sum_{l=1}^{L} \log p_\theta(x, z_l) - \log q_\phi(z_l|x).$$

**Estimator B** (eq. 7) integrates the KL term analytically (appendix B:
$-D_{KL} = \tfrac12\sum_j (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)$) and samples only the reconstruction:

$$\tilde{\mathcal{L}}^B = -D_{KL}(q_\phi(z|x)\,\|\,p(z)) + \frac{1}{L}\sum_{l=1}^{L} \log p_\theta(x|z_l).$$

Section 2.3: B "typically has less variance" because less of it is random. Here both see the same
$\epsilon$, so the decoder's gradient is identical and every difference is the KL term's noise, which
reaches only the **encoder**. It is largest where the decoder ignores $z$: at initialisation, and in
latent dimensions the model does not use. On a trained model the reconstruction's noise dominates and
the gap narrows; A's ELBO estimate can even spread *less*, because $\log p(x,z) - \log q(z|x)$ would be
the constant $\log p(x)$ if $q$ were the true posterior. **L** averages $L$ independent draws: every
variance falls like $1/L$ (a line of slope −1 on these log-log axes), at $L$ times the cost. The paper
uses $L = 1$ with minibatches of $M = 100$, since the batch already averages $M$ draws.
""")


def variance_figure(table: pd.DataFrame) -> go.Figure:
    parts = [("grad_var", "all parameters"), ("grad_var_encoder", "encoder"), ("grad_var_decoder", "decoder")]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"Gradient variance: {t}" for _, t in parts])
    for col, (key, _) in enumerate(parts, start=1):
        for est in ("A", "B"):
            rows = table[table.estimator == est]
            # B dashed: in the decoder panel the two lines coincide (the same noise), and both stay visible
            fig.add_trace(go.Scatter(x=rows.L, y=rows[key], mode="lines+markers", name=f"estimator {est}",
                                     legendgroup=est, showlegend=col == 1,
                                     line=dict(color=COLOURS[est], width=3, dash="solid" if est == "A" else "dash")),
                          row=1, col=col)
        a = table[table.estimator == "A"]
        if len(a) > 1:  # the 1/L line through A's first point: the slope both should follow
            l_values = a.L.to_numpy(float)
            fig.add_trace(go.Scatter(x=l_values, y=a[key].iloc[0] * l_values[0] / l_values, mode="lines",
                                     name="∝ 1/L", legendgroup="ref", showlegend=col == 1,
                                     line=dict(color="grey", width=1, dash="dot")), row=1, col=col)
    fig.update_xaxes(type="log", title_text="L (samples per image)", tickvals=sorted(table.L.unique()))
    fig.update_yaxes(type="log", exponentformat="power", dtick=1)  # one label per decade
    return fig.update_layout(height=380, font=FONT, margin=dict(l=10, r=10, t=40, b=10))


def elbo_figure(table: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for est, shift in (("A", 0.96), ("B", 1.04)):  # nudged apart on the log axis so the bars do not hide each other
        rows = table[table.estimator == est]
        fig.add_trace(go.Scatter(x=rows.L * shift, y=rows.elbo_mean, mode="lines+markers", name=f"estimator {est}",
                                 error_y=dict(type="data", array=rows.elbo_std, thickness=2),
                                 customdata=np.stack([rows.L, rows.elbo_std], axis=-1),
                                 hovertemplate="L=%{customdata[0]}<br>%{y:.2f} ± %{customdata[1]:.2f} nats<extra></extra>",
                                 line=dict(color=COLOURS[est], width=3)))
    fig.update_xaxes(type="log", title_text="L (samples per image)", tickvals=sorted(table.L.unique()))
    fig.update_yaxes(title_text="ELBO estimate (nats per image)")
    return fig.update_layout(height=380, font=FONT, margin=dict(l=10, r=10, t=40, b=10),
                             title="The batch's ELBO estimate: mean ± standard deviation over repeats")


@st.cache_data(max_entries=256, show_spinner=False)
def cell(sha256: str, key: str, weights: str, batch: int, repeats: int, n_samples: int, seed: int) -> list[dict]:
    """One L's rows for A and B, cached per checkpoint and settings (a few seconds of work at most)."""
    ck = state.open_checkpoint(key)
    model = ck.model if weights == "trained" else untrained_like(ck.model_config, seed)
    x = study_batch(ck, state.dataset_for(ck), batch, seed)
    return study_cell(model, x, n_samples, repeats=repeats, seed=seed)


st.header("Estimator lab")
st.caption("How noisy is the gradient the optimiser follows? The same batch, many draws of the noise, "
           "SGVB estimator A (eq. 6) against B (eq. 7), for L samples per image.")
ck = state.current_checkpoint()
if ck is None or state.data_or_message(ck) is None:
    closing_note()
    st.stop()
n_test = len(state.dataset_for(ck).x_test)

with st.form("lab_form"):
    c1, c2, c3, c4 = st.columns(4)
    batch = int(c1.number_input("Batch size (test images)", 1, n_test, min(32, n_test), key="lab_batch"))
    repeats = int(c2.number_input("Repeats (draws of the noise)", 2, 200, 16, key="lab_repeats"))
    seed = int(c3.number_input("Seed", 0, 10**6, 0, key="lab_seed"))
    weights = c4.radio("Weights", list(WEIGHTS), format_func=WEIGHTS.get, key="lab_weights")
    l_values = st.multiselect("Values of L", list(range(1, 101)), default=list(DEFAULT_L_VALUES), key="lab_l")
    st.form_submit_button("Run", type="primary")

try:
    check_study(l_values, repeats, batch, ck.model_config.n_pixels)
except ConfigError as err:
    fail(str(err)[0].upper() + str(err)[1:])
    closing_note()
    st.stop()

l_values = sorted(l_values)
bar = st.progress(0.0, text="Measuring…")
rows, done = [], 0
for n_samples in l_values:
    rows += cell(ck.sha256, state.current_key(), weights, batch, repeats, n_samples, seed)
    done += n_samples
    bar.progress(done / sum(l_values), text=f"Measuring… L = {n_samples} done")
bar.empty()

st.markdown(f"**Measured:** {summary_sentence(rows)}")
st.caption(f"{batch} test images, {repeats} repeats, L = {', '.join(map(str, l_values))}, seed {seed}, "
           f"{WEIGHTS[weights].lower()} weights. Variances are per parameter, averaged over the parameters.")
table = pd.DataFrame(rows)
st.plotly_chart(variance_figure(table), key="lab_variance")
st.plotly_chart(elbo_figure(table), key="lab_elbo")
st.dataframe(table.drop(columns=["repeats", "batch"]).rename(columns={
    "elbo_mean": "ELBO mean (nats)", "elbo_std": "ELBO std (nats)", "grad_var": "grad. variance",
    "grad_var_encoder": "encoder", "grad_var_decoder": "decoder", "grad_snr": "grad. signal/noise",
    "grad_snr_encoder": "encoder signal/noise"}), hide_index=True,
    column_config={c: st.column_config.NumberColumn(format="%.3e") for c in ("grad. variance", "encoder", "decoder")})
closing_note()
