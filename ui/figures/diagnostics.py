"""The diagnostics panel's figures: KL per dimension (now, and over training), the IW bound against K, and
the aggregate posterior against the prior (numbers from vae.diagnostics)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from vae.diagnostics import COLLAPSE_KL, IWCurve, marginal_density, prior_density
from vae.precision import format_bound

from .style import PALETTE, layout


def kl_bars(kl: np.ndarray, activity: np.ndarray, *, height: int = 320) -> go.Figure:
    dims = [f"z{d}" for d in range(len(kl))]
    colours = [PALETTE[1] if v >= COLLAPSE_KL else "#bbbbbb" for v in kl]
    fig = go.Figure(go.Bar(x=dims, y=kl, marker_color=colours, customdata=activity,
                           hovertemplate="%{x}: KL %{y:.3f} nats<br>Cov of means %{customdata:.3f}<extra></extra>"))
    fig.update_yaxes(title_text="KL (nats)")
    return layout(fig, height, title="KL per dimension now (grey: collapsed)", showlegend=False)


def kl_heatmap(epochs: np.ndarray, matrix: np.ndarray, *, height: int = 320) -> go.Figure:
    fig = go.Figure(go.Heatmap(x=epochs, y=[f"z{d}" for d in range(matrix.shape[1])], z=matrix.T.astype(np.float32),
                               colorscale="Viridis", colorbar=dict(title="nats"),
                               hovertemplate="epoch %{x}<br>%{y}: KL %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="epoch")
    return layout(fig, height, title="KL per dimension over training (test set)")


def iw_figure(curves: dict[str, IWCurve], *, height: int = 360) -> go.Figure:
    fig = go.Figure()
    for i, (label, c) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=c.ks, y=c.iw, mode="lines+markers", name=f"{label}: IW bound",
                                 line=dict(color=colour), error_y=dict(type="data", array=c.iw_se, thickness=1),
                                 # the bars' SE
                                 text=[format_bound(v, se) for v, se in zip(c.iw, c.iw_se, strict=True)],
                                 hovertemplate=f"{label}<br>K = %{{x}}: %{{text}} nats<extra></extra>"))
        fig.add_trace(go.Scatter(x=[c.ks[0], c.ks[-1]], y=[c.elbo, c.elbo], mode="lines", name=f"{label}: ELBO",
                                 line=dict(color=colour, dash="dot"),
                                 hovertemplate=f"{label}: ELBO {format_bound(c.elbo)} nats<extra></extra>"))
    fig.update_xaxes(type="log", title_text="importance samples K")
    fig.update_yaxes(title_text="nats per image")
    return layout(fig, height, title="IW bound rising from the ELBO towards log p(x)")


def aggregate_figure(mu: np.ndarray, logvar: np.ndarray, dims: list[int], *, height: int = 320) -> go.Figure:
    grid = np.linspace(-4, 4, 161)
    fig = go.Figure(go.Scatter(x=grid, y=prior_density(grid), name="prior N(0, 1)",
                               line=dict(color="black", dash="dash", width=3)))
    for i, d in enumerate(dims):
        fig.add_trace(go.Scatter(x=grid, y=marginal_density(mu, logvar, d, grid), name=f"q(z{d})",
                                 line=dict(color=PALETTE[(i + 2) % len(PALETTE)], width=2)))
    fig.update_xaxes(title_text="z")
    fig.update_yaxes(title_text="density")
    return layout(fig, height, title="aggregate posterior q(z) = mean over images of q(z|x), per dimension")
