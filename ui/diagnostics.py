"""The diagnostics panel (Latent space and Compare): active units, collapse, KL per dimension over
training, the IW bound against K, and the aggregate posterior against the prior. Numbers come from
vae.diagnostics; this file lays them out."""
from __future__ import annotations

from concurrent.futures import Future

import streamlit as st

from vae.checkpoint import Checkpoint
from vae.data import DataError
from vae.derived import IW_CURVE_POINTS
from vae.diagnostics import (
    COLLAPSE_KL,
    IW_KS,
    IWCurve,
    aggregate_posterior,
    collapse_warning,
    collapsed_dims,
    kl_history,
    read_iw_curve,
)
from vae.latent import dims_by_kl
from vae.metrics import ACTIVE_UNIT_THRESHOLD, active_units, kl_per_dim, unit_activity
from vae.precision import FIXED_DECIMALS, format_bound
from vae.storage import iw_curve_path

from . import state
from .background import cached_or_pending, rerun_when_done, task
from .figures.diagnostics import aggregate_figure, iw_figure, kl_bars, kl_heatmap
from .shared_figures import shared_figure
from .widgets import explain

IW_POINTS = IW_CURVE_POINTS  # test images for the IW curve: K = 5000 on each takes a few seconds on one core


def _iw_curve_or_future(ck: Checkpoint) -> tuple[IWCurve | None, Future | None]:
    """The checkpoint's IW curve from the cache, or the background computation that will make it."""
    root, ks, data = state.settings().runs_root, IW_KS, state.dataset_for(ck)
    n = min(IW_POINTS, len(data.x_test))
    return cached_or_pending(("iw", ck.sha256, n), lambda: read_iw_curve(iw_curve_path(root, ck.sha256, n, ks)),
                             task("iw-curve", ck, n_points=n, ks=list(ks)), what="The IW curve")


def iw_curve(ck: Checkpoint) -> IWCurve | None:
    """The IW curve, or None while it is computed (the page reruns by itself when it is ready)."""
    curve, pending = _iw_curve_or_future(ck)
    if pending is not None:
        rerun_when_done(pending)
    return curve


# -- the panels ----------------------------------------------------------------------------
def panel(ck: Checkpoint, enc) -> None:
    """Diagnostics of one checkpoint on its test set (Latent space page)."""
    kl, activity = kl_per_dim(enc.mu, enc.logvar), unit_activity(enc.mu)
    d = len(kl)
    agg = aggregate_posterior(enc.mu, enc.logvar)
    curve = iw_curve(ck)
    a, b, c, e = st.columns(4)
    a.metric("Active units", f"{active_units(enc.mu)} / {d}",
             help=f"Dimensions whose posterior mean varies across images: Cov > {ACTIVE_UNIT_THRESHOLD} "
                  "(Burda et al., 2015).")
    b.metric("Collapsed dimensions", len(collapsed_dims(kl)), help=f"KL below {COLLAPSE_KL} nats.")
    # The curve keeps no Monte Carlo error of its gap; on its 100 images that is 0.09 nats for both bundled
    # models (ELBO from 64 draws, IW from 5000, measured), so FIXED_DECIMALS
    c.metric("IW gain at K=5000", format_bound(curve.gap, unit="nats") if curve else "computing…",
             help="How much the importance-weighted bound gains over the ELBO: the posterior's mismatch.")
    e.metric("q(z) vs prior", f"{agg.kl_to_prior:.2f} nats",
             help="KL of the moment-matched aggregate posterior to N(0, I).")
    warning = collapse_warning(kl)
    if warning:
        st.warning(warning, icon=":material/warning:")
    left, right = st.columns(2)
    # Each figure depends on the checkpoint alone (its test set): built once per server, shared by every visitor.
    key = (ck.sha256,)
    left.plotly_chart(shared_figure("kl_bars", key, lambda: kl_bars(kl, activity)), key="diag_kl")
    epochs, matrix = kl_history(ck.history)
    if len(epochs) > 1:
        right.plotly_chart(shared_figure("kl_heatmap", key, lambda: kl_heatmap(epochs, matrix)), key="diag_kl_history")
    else:
        right.info("This checkpoint kept no KL per dimension over training (runs trained with this version do).")
    left, right = st.columns(2)
    if curve:
        left.plotly_chart(shared_figure("iw_figure", key, lambda: iw_figure({"this model": curve})), key="diag_iw")
        left.caption(f"{curve.n_points} test images; the bound for K uses the first K of 5000 samples per image.")
    else:
        left.info(f"The IW bound for K = 1 … 5000 on {IW_POINTS} test images is being computed in the "
                  "background (once per checkpoint, then cached); it appears here by itself.")
    aggregate = shared_figure("aggregate", key, lambda: aggregate_figure(enc.mu, enc.logvar, dims_by_kl(kl)[:3]))
    right.plotly_chart(aggregate,
                       key="diag_agg")
    right.caption(agg.summary() + ".")
    explain("What do these diagnostics say?", DIAGNOSTICS_NOTE)


def compare_panel(cks: dict[str, Checkpoint]) -> list[Future]:
    """The same diagnostics, one row per checkpoint, and their IW curves overlaid (Compare page). Returns the
    background jobs still running, for the page's one `rerun_when_done`."""
    rows, curves, pending = [], {}, []
    for label, ck in cks.items():
        try:
            enc = state.encoding(ck, "test")
        except DataError as err:  # a missing data set is reported; the rest still compare
            rows.append({"checkpoint": label, "note": str(err)})
            continue
        kl, agg = kl_per_dim(enc.mu, enc.logvar), aggregate_posterior(enc.mu, enc.logvar)
        curve, future = _iw_curve_or_future(ck)  # the data set loaded for the encoding above
        if curve:
            curves[label] = curve
        if future is not None:
            pending.append(future)
        dead = collapsed_dims(kl)
        rows.append({"checkpoint": label, "latent": len(kl),
                     "active units": active_units(enc.mu),
                     "collapsed": len(dead),  # the gap's MC error is ~0.1 nats: FIXED_DECIMALS (see panel)
                     "IW gain at K=5000 (nats)": round(curve.gap, FIXED_DECIMALS) if curve else None,
                     "q(z) vs prior (nats)": round(agg.kl_to_prior, 2)})
        if dead:
            st.warning(f"{label}: " + collapse_warning(kl), icon=":material/warning:")
    st.dataframe(rows, hide_index=True)
    if curves:
        st.plotly_chart(iw_figure(curves), key="cmp_iw")
    if len(curves) < len(cks):
        st.info("IW curves are computed in the background, one checkpoint at a time; they appear as they finish.")
    return pending


DIAGNOSTICS_NOTE = """
**Active units.** A latent dimension is in use when its posterior mean E_q[z_d] varies across images
(covariance above 0.01, Burda et al. 2015). **Collapsed** dimensions have KL(q(z_d|x) || p(z_d)) near zero
for every image (appendix B gives the KL in closed form): q(z_d|x) is just the prior, so z_d tells the
decoder nothing. The KL term of the bound (eq. 7) makes unused dimensions collapse: it charges for every
nat of information a dimension carries.

**The IW bound against K.** log p(x) = ELBO + KL(q(z|x) || p(z|x)) (eq. 1). The importance-weighted bound
log (1/K) sum_k p(x, z_k) / q(z_k|x) equals the ELBO in expectation at K = 1 and rises towards log p(x)
as K grows (Burda et al. 2015), so its rise shows how far the Gaussian q(z|x) is from the true posterior.

**The aggregate posterior.** Averaging q(z|x) over the data gives q(z). Sampling z from the prior
(the Samples page) only gives images like the data where q(z) covers the prior: a q(z) narrower than,
or shifted from, N(0, 1) leaves prior regions that decode to nothing seen in training.
"""
