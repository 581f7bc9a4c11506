"""The "Your input" page's figure: a model's latent map with the input's posterior drawn on top."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .figures import latent_map

INPUT_NAME = "your input"  # the legend entry a reader (and the browser test) looks for


def map_with_posterior(coords: np.ndarray, labels: np.ndarray | None, class_names, centre: np.ndarray | None = None,
                       outline: np.ndarray | None = None, *, title: str, height: int = 460) -> go.Figure:
    """The test set's posterior means (as on the Latent space page) plus, once there is an input, its
    posterior: a star at the mean and the one-standard-deviation outline of q(z|x). SVG traces, so they
    stay on top of the WebGL points."""
    fig = latent_map(coords, np.arange(len(coords)), labels, class_names, title=title, height=height)
    fig.update_layout(dragmode="zoom")  # nothing to select here
    if centre is None:
        return fig
    fig.add_trace(go.Scatter(x=[float(centre[0])], y=[float(centre[1])], mode="markers", name=INPUT_NAME,
                             marker=dict(symbol="star", size=18, color="#d62728", line=dict(width=1.5, color="black")),
                             hovertemplate="your input: posterior mean<br>(%{x:.2f}, %{y:.2f})<extra></extra>"))
    # The outline goes on top of the star: a confident encoder's outline is smaller than the star.
    fig.add_trace(go.Scatter(x=outline[:, 0], y=outline[:, 1], mode="lines", name="q(z|x), 1 std",
                             line=dict(color="black", width=2), hoverinfo="skip"))
    return fig
