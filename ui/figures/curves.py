"""Learning curves: one run's ELBO, reconstruction and KL while it trains, and several runs overlaid."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vae.precision import FIXED_DECIMALS

from .style import PALETTE, layout


def training_curves(history: list[dict], n_pixels: int, *, height: int = 360) -> go.Figure:
    """ELBO, reconstruction and KL against epochs: train per logged step, train and test per epoch.
    Hover gives nats and bits per dimension."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("ELBO (nats, higher is better)",
                                                        "Reconstruction E[log p(x|z)]", "KL(q(z|x) || p(z))"))
    series = [("train", "step", "train (per step)", dict(width=1), "lines", 0.5),
              ("train", "epoch", "train (epoch)", dict(width=3), "lines+markers", 1.0),
              ("test", "epoch", "test (epoch)", dict(width=3, dash="dash"), "lines+markers", 1.0)]
    for s, (split, kind, name, line, mode, opacity) in enumerate(series):
        rows = [r for r in history if r.get("split") == split and r.get("kind", "epoch") == kind]
        if not rows:
            continue
        x = np.array([r["epoch"] for r in rows], np.float32)
        for col, key in enumerate(("elbo", "recon", "kl"), start=1):
            y = np.array([r[key] for r in rows], np.float32)
            bits = np.abs(y) / (n_pixels * math.log(2))
            fig.add_trace(go.Scatter(x=x, y=y, mode=mode, name=name, legendgroup=name, showlegend=col == 1,
                                     line=dict(color=PALETTE[s], **line), opacity=opacity, customdata=bits,
                                     # Logged values carry no SE (a minibatch, or one eps per test image:
                                     # 0.1-0.2 nats of noise), so FIXED_DECIMALS; 0.1 nats is ~0.0002 bits/dim
                                     hovertemplate=f"{name}<br>epoch %{{x:.2f}}<br>%{{y:.{FIXED_DECIMALS}f}} nats"
                                                   "<br>%{customdata:.4f} bits/dim<extra></extra>"),
                          row=1, col=col)
    _mark_changes(fig, history)
    fig.update_xaxes(title_text="epoch")
    return layout(fig, height, legend=dict(orientation="h", y=-0.25))


CHANGED = "lr / β changed"  # the legend's name of the change markers


def _mark_changes(fig: go.Figure, history: list[dict]) -> None:
    """Where the learning rate or beta was changed (vae/control.py): a dotted line across the three panels and
    a labelled diamond on the ELBO curve, at the last train record before the change."""
    changes = [r for r in history if r.get("kind") == "change"]
    if not changes:
        return
    trained = [r for r in history if r.get("split") == "train" and "elbo" in r]
    heights = []
    for change in changes:
        for col in (1, 2, 3):
            fig.add_vline(x=change["epoch"], line=dict(color="grey", dash="dot", width=1), row=1, col=col)
        before = [r["elbo"] for r in trained if r["step"] <= change["step"]]
        heights.append(before[-1] if before else (trained[0]["elbo"] if trained else 0.0))
    labels = [f"lr {c['lr']:g}, β {c['beta']:g}" for c in changes]
    fig.add_trace(go.Scatter(x=[c["epoch"] for c in changes], y=heights, mode="markers+text", name=CHANGED,
                             text=labels, textposition="bottom left", customdata=[c["step"] for c in changes],
                             marker=dict(symbol="diamond", size=12, color="black"),
                             hovertemplate="step %{customdata}: %{text}<extra></extra>"), row=1, col=1)


def compare_curves(histories: dict[str, list[dict]], *, height: int = 420) -> go.Figure:
    """Test (solid) and train (dotted) ELBO per epoch of several runs, against training samples seen."""
    fig = go.Figure()
    for k, (label, history) in enumerate(histories.items()):
        for split, dash in (("test", "solid"), ("train", "dot")):
            rows = [r for r in history if r.get("split") == split and r.get("kind", "epoch") == "epoch"]
            if rows:
                fig.add_trace(go.Scatter(
                    x=np.array([r.get("samples", r["step"]) for r in rows], np.float32),
                    y=np.array([r["elbo"] for r in rows], np.float32), name=f"{label} ({split})",
                    mode="lines+markers", line=dict(color=PALETTE[k % len(PALETTE)], dash=dash, width=3),
                    # one eps per test image when logged: no SE at hand, a fixed precision (vae.precision)
                    hovertemplate=f"{label} ({split})<br>%{{x:,.0f}} samples<br>%{{y:.{FIXED_DECIMALS}f}} nats"
                                  "<extra></extra>"))
    fig.update_xaxes(title_text="training samples seen", type="log")
    fig.update_yaxes(title_text="ELBO (nats per example)")
    return layout(fig, height, legend=dict(orientation="h", y=-0.3))
