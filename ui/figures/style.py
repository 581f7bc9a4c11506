"""What every figure shares: the palette, the font and the margins, chosen to stay legible on a classroom
projector."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.colors import qualitative

PALETTE = qualitative.Safe  # CARTO "Safe": a colour-blind-safe qualitative palette (11 colours)
FONT = dict(size=16)


def layout(fig: go.Figure, height: int, legend: dict | None = None, **kw) -> go.Figure:
    fig.update_layout(height=height, font=FONT, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(itemsizing="constant", **(legend or {})), **kw)
    return fig
