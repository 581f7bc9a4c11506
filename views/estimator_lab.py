"""Estimator lab: for one batch, the gradient variance of SGVB estimators A and B, and the ELBO's spread, against L."""
import pandas as pd
import streamlit as st

from ui import state
from ui.estimator_figures import elbo_figure, variance_figure
from ui.widgets import explain, fail
from vae.estimators import DEFAULT_L_VALUES, check_study, study_batch, study_cell, summary_sentence, untrained_like
from vae.model import ConfigError

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
