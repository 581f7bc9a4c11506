"""Plotly figures of the Estimator lab: gradient variance and the ELBO's spread against L, log-log."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import FONT, PALETTE

COLOURS = {"A": PALETTE[1], "B": PALETTE[0]}


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
                                 hovertemplate="L=%{customdata[0]}<br>%{y:.2f} ± %{customdata[1]:.2f} nats"
                                               "<extra></extra>",
                                 line=dict(color=COLOURS[est], width=3)))
    fig.update_xaxes(type="log", title_text="L (samples per image)", tickvals=sorted(table.L.unique()))
    fig.update_yaxes(title_text="ELBO estimate (nats per image)")
    return fig.update_layout(height=380, font=FONT, margin=dict(l=10, r=10, t=40, b=10),
                             title="The batch's ELBO estimate: mean ± standard deviation over repeats")
