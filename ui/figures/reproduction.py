"""The paper's figure 2 as a Plotly figure: lower bound against training samples, per latent size, for
AEVB and the wake-sleep baseline."""
from __future__ import annotations

import math

import plotly.graph_objects as go

from vae import reproduce as rp
from vae.precision import FIXED_DECIMALS

from .style import FONT, PALETTE

# Line styles (test, train): AEVB solid and dashed, wake-sleep dotted and dash-dotted, as figure 2 draws the
# two algorithms apart.
DASH = {"aevb": ("solid", "dash"), "wake-sleep": ("dot", "dashdot")}


def figure2(series: list, dims: list[int], dataset: str = "mnist") -> go.Figure:
    """Ours as lines, one colour per Nz; on MNIST the paper's read-off values as diamonds. Frey Face's bound
    is a density (Gaussian decoder), so its axis says so and there are no diamonds (see docs/reproduction.md)."""
    reference = () if dataset in rp.CONTINUOUS_DATASETS else rp.PAPER_FIG2_MNIST
    sizes = sorted(set(dims) | {p.latent_dim for p in reference})
    colour = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(sizes)}
    fig = go.Figure()
    for s in (s for s in series if s.samples):
        test_dash, train_dash = DASH.get(s.algorithm, DASH["aevb"])
        label = f"{'' if s.algorithm == 'aevb' else 'wake-sleep '}Nz={s.latent_dim} {s.split}"
        fig.add_trace(go.Scatter(x=s.samples, y=s.elbo, mode="lines", name=label,
                                 line=dict(color=colour.get(s.latent_dim, PALETTE[0]),
                                           width=3 if s.algorithm == "aevb" else 2,
                                           dash=test_dash if s.split == "test" else train_dash),
                                 # logged bounds carry no SE (one eps per image): a fixed precision
                                 hovertemplate=f"{label}<br>%{{x:,.0f}} samples<br>"
                                               f"%{{y:.{FIXED_DECIMALS}f}} nats<extra></extra>"))
    for k in sorted({p.latent_dim for p in reference}):
        points = [p for p in reference if p.latent_dim == k]
        fig.add_trace(go.Scatter(x=[p.samples for p in points], y=[p.elbo for p in points], mode="markers",
                                 name=f"paper Nz={k}", customdata=[p.split for p in points],
                                 marker=dict(color=colour[k], size=14, symbol="diamond", line=dict(width=1)),
                                 hovertemplate=f"paper, Nz={k} (%{{customdata}}), read off figure 2: "
                                               f"%{{y:.{FIXED_DECIMALS}f}} nats<extra></extra>"))
    fig.update_xaxes(title_text="training samples evaluated", type="log", range=[4, math.log10(3e8)])
    unit = "nats of density per image" if dataset in rp.CONTINUOUS_DATASETS else "nats per example"
    fig.update_yaxes(title_text=f"lower bound L ({unit})")
    fig.update_layout(height=520, font=FONT, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.2))
    return fig
