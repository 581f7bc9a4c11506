"""Animated figures of images: the interpolation's frames, Replay's snapshots of map and pictures, and one
snapshot alone (the Train page's live map)."""
from __future__ import annotations

import base64
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vae.export import png_bytes

from .maps import FRAME_SCALE, FRAME_TITLE
from .style import PALETTE, layout


def image_frames(frames: np.ndarray, t: np.ndarray, *, height: int = 420, title: str = "") -> go.Figure:
    """A decoded path as Plotly animation frames with Plotly's own slider: moving it redraws in the
    browser, without asking the server. Pixels stay crisp (zsmooth=False)."""
    def heat(img):
        return go.Heatmap(z=np.asarray(img[::-1], np.float32), zmin=0, zmax=1, colorscale="gray", showscale=False,
                          zsmooth=False, hoverinfo="skip")
    fig = go.Figure(data=[heat(frames[0])],
                    frames=[go.Frame(data=[heat(f)], name=str(i)) for i, f in enumerate(frames)])
    steps = [dict(method="animate", label=f"{v:.2f}",
                  args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                       transition=dict(duration=0))])
             for i, v in enumerate(t)]
    fig.update_layout(sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="t = "), pad=dict(t=30), x=0.1,
                                    len=0.9)],
                      updatemenus=[dict(type="buttons", showactive=False, x=0, y=-0.05, xanchor="right", buttons=[
                          dict(label="▶", method="animate",
                               args=[None, dict(frame=dict(duration=120, redraw=True), fromcurrent=True)])])])
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x")
    return layout(fig, height, title=title)


def frame_marker(video_frames: np.ndarray, x: float) -> dict:
    """Markers coloured by frame number, with the colour bar at `x` (the right edge of the map's subplot)."""
    return dict(size=6, color=np.asarray(video_frames, np.int32), colorscale=FRAME_SCALE, opacity=0.8,
                showscale=True, colorbar=dict(title=dict(text=FRAME_TITLE), x=x, xanchor="left", thickness=12,
                                              len=0.6, y=0.2, yanchor="bottom"))


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 grey image as an inline PNG (lossless: pixel blocks stay sharp when the browser enlarges them)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(np.asarray(image, np.uint8))).decode()


MAP_REACH = 3  # the prior's three standard deviations: the least half-side a snapshot's map is drawn with


def map_span(coords: list[np.ndarray]) -> int:
    """Half the side of the square that holds every point of these frames: a whole number, at least MAP_REACH.
    Whole, so that a live map's axes change only when a point first passes the next unit: a class sees the
    points move, the untrained blob spread out from the middle, not the axes rescale under them."""
    reach = max((float(np.abs(c).max()) for c in coords if len(c)), default=0.0)
    return max(MAP_REACH, math.ceil(1.05 * reach))


def _panels(labels: np.ndarray, class_names, video_frames: np.ndarray | None):
    """The three panels every snapshot is drawn in (the map, prior samples, reconstructions), and the function
    that makes one snapshot's traces for them: (figure, traces(frame, style=), number of map traces)."""
    # A map coloured by frame keeps its colour bar in a wider gap between the map and the samples.
    fig = make_subplots(rows=1, cols=3, column_widths=[0.5, 0.25, 0.25],
                        horizontal_spacing=0.04 if video_frames is None else 0.1,
                        subplot_titles=(f"posterior means of {len(labels)} test images",
                                        "samples from fixed z ~ N(0, I)",
                                        "test images, reconstructed below"))
    if video_frames is not None:  # the narrower last column: its title ends at the figure's edge, not past it
        fig.layout.annotations[2].update(x=1, xanchor="right")
    unlabelled = labels is None or (labels < 0).all() or video_frames is not None
    classes = [None] if unlabelled else [int(c) for c in np.unique(labels)]
    rows = [np.arange(len(labels)) if c is None else np.flatnonzero(labels == c) for c in classes]

    def traces(frame, *, style: bool):
        """One scatter per class and the two image grids. Only the first frame's scatters carry names and
        styles: an animation frame restates what changes (positions, pictures), which keeps 40 frames cheap."""
        out = []
        for c, r in zip(classes, rows, strict=True):
            x, y = frame["coords"][r, 0], frame["coords"][r, 1]
            if not style:
                out.append(go.Scatter(x=x, y=y))
                continue
            name = "all points" if c is None else (class_names[c] if class_names and c < len(class_names) else str(c))
            out.append(go.Scatter(x=x, y=y, mode="markers", name=name, hoverinfo="name",
                                  marker=dict(size=6, color=PALETTE[(c or 0) % len(PALETTE)], opacity=0.8)))
            if video_frames is not None:  # the frame scale of the Latent space page, its bar beside the map
                out[-1].update(marker=frame_marker(video_frames, fig.layout.xaxis.domain[1] + 0.01),
                               hovertemplate=f"{FRAME_TITLE} %{{marker.color}}<extra></extra>")
        for key in ("samples", "reconstructions"):  # PNG: a few KB per grid, against ~18 KB as a typed array
            out.append(go.Image(source=png_data_uri(frame[key]), hoverinfo="skip"))
        return out

    return fig, traces, len(classes)


def _draw(fig: go.Figure, traces: list, n_map: int, span: int) -> None:
    """One snapshot's traces into the panels; the map's square fixed at +-span, the pictures' axes hidden."""
    for i, trace in enumerate(traces):
        fig.add_trace(trace, row=1, col=1 if i < n_map else 2 + i - n_map)
    fig.update_xaxes(range=[-span, span], row=1, col=1)
    fig.update_yaxes(range=[-span, span], row=1, col=1)
    for col in (2, 3):
        fig.update_xaxes(visible=False, row=1, col=col)
        fig.update_yaxes(visible=False, row=1, col=col)


def snapshot_figure(frame: dict, labels: np.ndarray, class_names, *, span: int, height: int = 440,
                    video_frames: np.ndarray | None = None) -> go.Figure:
    """One snapshot as each of Replay's frames draws it: the Train page's live map. `frame` as in
    `replay_figure`; `span` (map_span of every frame so far) keeps the axes still from one frame to the next."""
    fig, traces, n_map = _panels(labels, class_names, video_frames)
    _draw(fig, traces(frame, style=True), n_map, span)
    fig = layout(fig, height, legend=dict(orientation="h", x=0, y=1.12, yanchor="bottom"))
    fig.update_layout(margin=dict(l=10, r=10, t=90, b=10))
    return fig


def replay_figure(frames: list[dict], labels: np.ndarray, class_names, *, height: int = 600,
                  video_frames: np.ndarray | None = None) -> go.Figure:
    """Training replayed: the map, prior samples and reconstructions of each snapshot as one Plotly
    animation, moved together by Plotly's own slider and play button (no server round trip).
    Each frame: {"name" (unique), "label" (the slider's: its epoch), "coords" [P, 2], "samples" and
    "reconstructions" uint8 grids}. `video_frames`: each map point's frame in the video its data set was cut
    from (Frey Face), coloured on a scale with a colour bar titled "frame" (as on the Latent space page) in
    place of classes."""
    fig, traces, n_map = _panels(labels, class_names, video_frames)
    first = traces(frames[0], style=True)  # the replay starts untrained; ▶ plays it forward
    _draw(fig, first, n_map, map_span([f["coords"] for f in frames]))
    every = list(range(len(first)))
    fig.frames = [go.Frame(data=traces(f, style=False), traces=every, name=f["name"]) for f in frames]
    steps = [dict(method="animate", label=f["label"],
                  args=[[f["name"]], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                          transition=dict(duration=0))])
             for f in frames]
    fig.update_layout(
        sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="epoch "), x=0.1, len=0.9, y=0, yanchor="top",
                      pad=dict(t=30))],
        updatemenus=[dict(type="buttons", direction="left", showactive=False, x=0, y=0, xanchor="left", yanchor="top",
                          pad=dict(t=45), buttons=[
            dict(label="▶", method="animate",
                 args=[None, dict(frame=dict(duration=400, redraw=True), fromcurrent=True,
                                  transition=dict(duration=0))]),
            dict(label="❚❚", method="animate",
                 args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))])])])
    fig = layout(fig, height, legend=dict(orientation="h", x=0, y=1.12, yanchor="bottom"))
    fig.update_layout(margin=dict(l=10, r=10, t=90, b=110))
    return fig
