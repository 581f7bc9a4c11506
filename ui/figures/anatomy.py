"""The ELBO anatomy page's figures (numbers from vae.anatomy): the posterior of each latent dimension against the
prior, the log-likelihood of each pixel, the KL of each dimension, and the bound's estimators side by side."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from vae.anatomy import Anatomy
from vae.precision import format_bound

from .style import PALETTE, layout

PRIOR_BAND = "rgba(120, 120, 120, 0.18)"  # the prior N(0, 1)'s 0 ± 1


def _dim_names(dims: np.ndarray) -> list[str]:
    return [f"z{int(d)}" for d in dims]


def posterior_figure(a: Anatomy, dims: np.ndarray, *, height: int = 340) -> go.Figure:
    """q(z_j|x) per dimension as mu ± sigma, this draw's z on top, over the prior's 0 ± 1 band: a new eps moves
    the crosses and never the bars."""
    names = _dim_names(dims)
    fig = go.Figure()
    fig.add_hrect(y0=-1, y1=1, fillcolor=PRIOR_BAND, line_width=0, layer="below")
    fig.add_hline(y=0, line=dict(color="grey", width=1, dash="dot"))
    fig.add_trace(go.Scatter(x=names, y=a.mu[dims], mode="markers", name="μ ± σ (q(z|x))",
                             marker=dict(size=11, color=PALETTE[0]),
                             error_y=dict(type="data", array=a.sigma[dims], thickness=3, width=8),
                             customdata=a.sigma[dims],
                             hovertemplate="%{x}: μ %{y:.3f}, σ %{customdata:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=names, y=a.z[dims], mode="markers", name="z = μ + σ·ε (this draw)",
                             marker=dict(size=12, symbol="x", color=PALETTE[1]), customdata=a.eps[dims],
                             hovertemplate="%{x}: z %{y:.3f} (ε %{customdata:.3f})<extra></extra>"))
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="prior N(0, 1): 0 ± 1",
                             marker=dict(size=14, symbol="square", color=PRIOR_BAND)))
    fig.update_yaxes(title_text="value")
    return layout(fig, height, title="q(z|x) per dimension against the prior", legend=dict(orientation="h", y=-0.2))


def pixel_figure(a: Anatomy, *, height: int = 380) -> go.Figure:
    """log p(x_i|z) per pixel for this draw, the image's way up: dark where the decoder pays most."""
    fig = go.Figure(go.Heatmap(z=a.pixel_log_lik.astype(np.float32), colorscale="Magma", colorbar=dict(title="nats"),
                               zsmooth=False,
                               hovertemplate="row %{y}, column %{x}: %{z:.3f} nats<extra></extra>"))
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return layout(fig, height, title=f"log p(x_i|z) per pixel: total {a.recon:.2f} nats")


def kl_figure(a: Anatomy, dims: np.ndarray, *, height: int = 380) -> go.Figure:
    """KL(q(z_j|x) || N(0, 1)) per shown dimension, appendix B's closed form; the title gives the total of all."""
    fig = go.Figure(go.Bar(x=_dim_names(dims), y=a.kl_per_dim[dims], marker_color=PALETTE[1],
                           hovertemplate="%{x}: KL %{y:.3f} nats<extra></extra>"))
    fig.update_yaxes(title_text="KL (nats)")
    return layout(fig, height, title=f"KL per dimension (appendix B): total {a.kl:.2f} nats", showlegend=False)


def estimates_figure(a: Anatomy, *, height: int = 300) -> go.Figure:
    """Estimators A and B (mean, bars ± the spread of one draw) and the IW bound (± its SE), beside this draw's
    one-sample ELBO (the dotted line): one row each, nats on the horizontal axis."""
    fig = go.Figure()
    for i, e in enumerate(a.estimates):
        label = f"IW, K = {e.samples}" if e.name == "IW" else f"{e.name}, L = {e.samples}"
        bar = e.se if e.name == "IW" else e.spread
        fig.add_trace(go.Scatter(x=[e.mean], y=[label], mode="markers", name=label,
                                 marker=dict(size=13, color=PALETTE[i % len(PALETTE)]),
                                 error_x=dict(type="data", array=[bar or 0.0], thickness=3, width=8),
                                 hovertemplate=f"{label}: {format_bound(e.mean, e.se)} nats<extra></extra>"))
    fig.add_vline(x=a.elbo, line=dict(color="black", width=2, dash="dot"),
                  annotation_text=f"this ε: {a.elbo:.2f}", annotation_position="top")
    fig.update_xaxes(title_text="nats (higher is better)")
    layout(fig, height, title="The bound's estimators for this image", showlegend=False)
    return fig.update_layout(margin=dict(t=70))  # room for the line's label under the title
