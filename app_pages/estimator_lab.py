"""Estimator lab: for one batch, the gradient variance of SGVB estimators A and B, and the ELBO's spread, against L."""
import pandas as pd
import streamlit as st

from ui import state
from ui.background import cached_or_pending, rerun_when_done, task
from ui.figures.estimators import elbo_figure, variance_figure
from ui.widgets import explain, fail
from vae.config import ConfigError
from vae.derived import LAB_DEFAULTS as LAB
from vae.estimators import DEFAULT_L_VALUES, Study, read_study_cell, run_study, summary_sentence

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


def measured(ck, l_values, **settings) -> tuple[Study, list]:
    """The study as far as it is measured, and the background work measuring the rest. Each L is one cell
    (`vae.estimators.cached_study_cell`, in the background process), kept in the checkpoint's cache folder.
    Raises ConfigError for settings the study refuses."""
    root, pending = state.settings().runs_root, []

    def measure(n_samples: int) -> list[dict] | None:
        cell = dict(settings, n_samples=n_samples)
        found, future = cached_or_pending(("estimator-cell", ck.sha256, *cell.values()),
                                          lambda: read_study_cell(root, ck.sha256, **cell),
                                          task("estimator-cell", ck, **cell), what=f"The study at L = {n_samples}")
        pending.extend([future] if future is not None else [])
        return found

    study = run_study(l_values, settings["repeats"], settings["batch"], ck.model_config.n_pixels, measure)
    return study, pending


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
    batch = int(c1.number_input("Batch size (test images)", 1, n_test, min(LAB["batch"], n_test), key="lab_batch"))
    repeats = int(c2.number_input("Repeats (draws of the noise)", 2, 200, LAB["repeats"], key="lab_repeats"))
    seed = int(c3.number_input("Seed", 0, 10**6, LAB["seed"], key="lab_seed"))
    weights = c4.radio("Weights", list(WEIGHTS), format_func=WEIGHTS.get, key="lab_weights")
    l_values = st.multiselect("Values of L", list(range(1, 101)), default=list(DEFAULT_L_VALUES), key="lab_l")
    st.form_submit_button("Run", type="primary")

try:
    study, pending = measured(ck, l_values, weights=weights, batch=batch, repeats=repeats, seed=seed)
except ConfigError as err:
    fail(str(err)[0].upper() + str(err)[1:])
    closing_note()
    st.stop()

rows, l_values = study.rows, study.l_values
if pending:  # the work grows with L, so the bar counts samples drawn; the text counts cells
    st.progress(study.fraction_done, text=f"Measuring in the background… {len(study.done)} of {len(l_values)} "
                "values of L done; the results fill in as they arrive.")
    rerun_when_done(*pending)
if not rows:
    closing_note()
    st.stop()

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
