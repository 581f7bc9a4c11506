"""Latent maps: the test set's posterior means coloured by label (or by frame, for a video's frames), with
optional uncertainty, a highlighted selection and a path."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .style import PALETTE, layout

FRAME_TITLE = "frame"  # the colour bar of a map coloured by frame index (the browser test looks for it)
FRAMES_NAME = "frames"
FRAME_SCALE = "Viridis"  # sequential and perceptually even: frame 0 dark, the last frame yellow


def latent_map(coords: np.ndarray, index: np.ndarray, labels: np.ndarray | None, class_names, *,
               title: str = "", std: np.ndarray | None = None, height: int = 560,
               highlight: np.ndarray | None = None, path: np.ndarray | None = None,
               frames: np.ndarray | None = None) -> go.Figure:
    """WebGL scatter of 2-D coordinates, one trace per class so the legend names classes; or, given `frames`
    (each row's place in a video, as Frey Face has in place of labels), one trace on a continuous colour scale
    with a colour bar titled "frame", so neighbouring frames read as neighbouring colours.

    customdata carries each point's row in the encoded set, so a click or lasso maps back to images.
    `std` adds the posterior standard deviation as error bars (2-D latents); `path` draws a line on top.
    """
    fig = go.Figure()
    coords = np.asarray(coords, np.float32)
    size = 5 if len(coords) < 20_000 else 3
    traces = _class_traces(coords, index, labels, class_names, std, size) if frames is None else \
        [_frame_trace(coords, index, frames, std, size)]
    for trace in traces:
        fig.add_trace(trace)
    if highlight is not None and len(highlight):
        fig.add_trace(go.Scattergl(x=highlight[:, 0], y=highlight[:, 1], mode="markers", name="selected",
                                   marker=dict(size=14 if len(highlight) <= 50 else 8, color="rgba(0,0,0,0)",
                                               line=dict(width=2 if len(highlight) <= 50 else 1, color="black")),
                                   hoverinfo="skip"))
    if path is not None:
        fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines+markers", name="path",
                                 line=dict(color="black", width=3), marker=dict(size=6), hoverinfo="skip"))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return layout(fig, height, title=title, dragmode="lasso", legend_title_text="class" if frames is None else "")


def _class_traces(coords, index, labels, class_names, std, size: int) -> list[go.Scattergl]:
    """One trace per class (one "all points" trace without labels), coloured from the qualitative palette."""
    groups = [(None, np.arange(len(index)))] if labels is None else \
        [(c, np.flatnonzero(labels[index] == c)) for c in np.unique(labels[index])]
    traces = []
    for cls, rows in groups:
        k = 0 if cls is None else int(cls)  # colour by class value, so every map colours a class alike
        named = class_names and cls is not None and cls < len(class_names)
        name = "all points" if cls is None else (class_names[cls] if named else str(cls))
        traces.append(go.Scattergl(
            x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=name,
            customdata=index[rows].astype(np.int32),
            marker=dict(size=size, color=PALETTE[k % len(PALETTE)], opacity=0.8),
            hovertemplate=f"index %{{customdata}}<br>label {name}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
            **_error_bars(std, index, rows)))
    return traces


def _frame_trace(coords, index, frames, std, size: int) -> go.Scattergl:
    """Every point in one trace, its colour its frame number on a sequential scale with a colour bar."""
    return go.Scattergl(
        x=coords[:, 0], y=coords[:, 1], mode="markers", name=FRAMES_NAME, customdata=index.astype(np.int32),
        marker=dict(size=size, color=np.asarray(frames)[index].astype(np.int32), colorscale=FRAME_SCALE, opacity=0.8,
                    showscale=True, colorbar=dict(title=dict(text=FRAME_TITLE), len=0.6, y=0, yanchor="bottom")),
        hovertemplate=f"index %{{customdata}}<br>{FRAME_TITLE} %{{marker.color}}<br>(%{{x:.2f}}, %{{y:.2f}})"
                      "<extra></extra>",
        **_error_bars(std, index, np.arange(len(index))))


def _error_bars(std: np.ndarray | None, index: np.ndarray, rows: np.ndarray) -> dict:
    """Each point's posterior standard deviation as error bars (2-D latents), or nothing."""
    if std is None:
        return {}
    spread = std[index[rows]].astype(np.float32)
    return dict(error_x=dict(type="data", array=spread[:, 0], thickness=0.6, width=0),
                error_y=dict(type="data", array=spread[:, 1], thickness=0.6, width=0))


INPUT_NAME = "your input"  # the legend entry a reader (and the browser test) looks for


def map_with_posterior(coords: np.ndarray, labels: np.ndarray | None, class_names, centre: np.ndarray | None = None,
                       outline: np.ndarray | None = None, *, title: str, height: int = 460,
                       frames: np.ndarray | None = None) -> go.Figure:
    """The test set's posterior means (as on the Latent space page) plus, once there is an input, its
    posterior: a star at the mean and the one-standard-deviation outline of q(z|x). SVG traces, so they
    stay on top of the WebGL points."""
    fig = latent_map(coords, np.arange(len(coords)), labels, class_names, title=title, height=height, frames=frames)
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
