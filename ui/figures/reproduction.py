"""The paper's figure 2 as a Plotly figure: lower bound against training samples, per latent size."""
from __future__ import annotations

import math

import plotly.graph_objects as go

from vae import reproduce as rp
from vae.precision import FIXED_DECIMALS

from .style import FONT, PALETTE


def figure2(series: list, dims: list[int]) -> go.Figure:
    """Ours as lines (test solid, train dashed), the paper's read-off values as diamonds; one colour per Nz."""
    sizes = sorted(set(dims) | {p.latent_dim for p in rp.PAPER_FIG2_MNIST})
    colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(sizes)}
    fig = go.Figure()
    for s in (s for s in series if s.samples):
        fig.add_trace(go.Scatter(x=s.samples, y=s.elbo, mode="lines", name=f"Nz={s.latent_dim} {s.split}",
                                 line=dict(color=colour[s.latent_dim], width=3,
                                           dash="solid" if s.split == "test" else "dash"),
                                 # logged bounds carry no SE (one eps per image): a fixed precision
                                 hovertemplate=f"Nz={s.latent_dim} {s.split}<br>%{{x:,.0f}} samples<br>"
                                               f"%{{y:.{FIXED_DECIMALS}f}} nats<extra></extra>"))
    for k in sorted({p.latent_dim for p in rp.PAPER_FIG2_MNIST}):
        points = [p for p in rp.PAPER_FIG2_MNIST if p.latent_dim == k]
        fig.add_trace(go.Scatter(x=[p.samples for p in points], y=[p.elbo for p in points], mode="markers",
                                 name=f"paper Nz={k}", customdata=[p.split for p in points],
                                 marker=dict(color=colour[k], size=14, symbol="diamond", line=dict(width=1)),
                                 hovertemplate=f"paper, Nz={k} (%{{customdata}}), read off figure 2: "
                                               f"%{{y:.{FIXED_DECIMALS}f}} nats<extra></extra>"))
    fig.update_xaxes(title_text="training samples evaluated", type="log", range=[4, math.log10(3e8)])
    fig.update_yaxes(title_text="lower bound L (nats per example)")
    fig.update_layout(height=520, font=FONT, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.2))
    return fig
