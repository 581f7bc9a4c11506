"""Plotly figures for the pages. Arrays go in as float32 numpy (plotly sends them as typed arrays).

Sizes and fonts are chosen to stay legible on a classroom projector.
"""
from __future__ import annotations

import base64
import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from vae.export import png_bytes
from vae.precision import FIXED_DECIMALS

PALETTE = qualitative.Safe  # CARTO "Safe": a colour-blind-safe qualitative palette (11 colours)
FONT = dict(size=16)


def _layout(fig: go.Figure, height: int, legend: dict | None = None, **kw) -> go.Figure:
    fig.update_layout(height=height, font=FONT, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(itemsizing="constant", **(legend or {})), **kw)
    return fig


def latent_map(coords: np.ndarray, index: np.ndarray, labels: np.ndarray | None, class_names, *,
               title: str = "", std: np.ndarray | None = None, height: int = 560,
               highlight: np.ndarray | None = None, path: np.ndarray | None = None) -> go.Figure:
    """WebGL scatter of 2-D coordinates, one trace per class so the legend names classes.

    customdata carries each point's row in the encoded set, so a click or lasso maps back to images.
    `std` adds the posterior standard deviation as error bars (2-D latents); `path` draws a line on top.
    """
    fig = go.Figure()
    coords = np.asarray(coords, np.float32)
    groups = [(None, np.arange(len(index)))] if labels is None else \
        [(c, np.flatnonzero(labels[index] == c)) for c in np.unique(labels[index])]
    for cls, rows in groups:
        k = 0 if cls is None else int(cls)  # colour by class value, so every map colours a class alike
        name = "all points" if cls is None else (class_names[cls] if class_names and cls < len(class_names) else str(cls))
        error = {}
        if std is not None:
            error = dict(error_x=dict(type="data", array=std[index[rows], 0].astype(np.float32), thickness=0.6, width=0),
                         error_y=dict(type="data", array=std[index[rows], 1].astype(np.float32), thickness=0.6, width=0))
        fig.add_trace(go.Scattergl(
            x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=name,
            customdata=index[rows].astype(np.int32),
            marker=dict(size=5 if len(coords) < 20_000 else 3, color=PALETTE[k % len(PALETTE)], opacity=0.8),
            hovertemplate=f"index %{{customdata}}<br>label {name}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
            **error))
    if highlight is not None and len(highlight):
        fig.add_trace(go.Scattergl(x=highlight[:, 0], y=highlight[:, 1], mode="markers", name="selected",
                                   marker=dict(size=14 if len(highlight) <= 50 else 8, color="rgba(0,0,0,0)",
                                               line=dict(width=2 if len(highlight) <= 50 else 1, color="black")),
                                   hoverinfo="skip"))
    if path is not None:
        fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines+markers", name="path",
                                 line=dict(color="black", width=3), marker=dict(size=6), hoverinfo="skip"))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return _layout(fig, height, title=title, dragmode="lasso", legend_title_text="class")


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
    fig.update_xaxes(title_text="epoch")
    return _layout(fig, height, legend=dict(orientation="h", y=-0.25))


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
    return _layout(fig, height, legend=dict(orientation="h", y=-0.3))


def image_frames(frames: np.ndarray, t: np.ndarray, *, height: int = 420, title: str = "") -> go.Figure:
    """A decoded path as Plotly animation frames with Plotly's own slider: moving it redraws in the
    browser, without asking the server. Pixels stay crisp (zsmooth=False)."""
    def heat(img):
        return go.Heatmap(z=np.asarray(img[::-1], np.float32), zmin=0, zmax=1, colorscale="gray", showscale=False,
                          zsmooth=False, hoverinfo="skip")
    fig = go.Figure(data=[heat(frames[0])],
                    frames=[go.Frame(data=[heat(f)], name=str(i)) for i, f in enumerate(frames)])
    steps = [dict(method="animate", label=f"{v:.2f}",
                  args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))])
             for i, v in enumerate(t)]
    fig.update_layout(sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="t = "), pad=dict(t=30), x=0.1, len=0.9)],
                      updatemenus=[dict(type="buttons", showactive=False, x=0, y=-0.05, xanchor="right", buttons=[
                          dict(label="▶", method="animate",
                               args=[None, dict(frame=dict(duration=120, redraw=True), fromcurrent=True)])])])
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x")
    return _layout(fig, height, title=title)


def png_data_uri(image: np.ndarray) -> str:
    """A uint8 grey image as an inline PNG (lossless: pixel blocks stay sharp when the browser enlarges them)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(np.asarray(image, np.uint8))).decode()


def replay_figure(frames: list[dict], labels: np.ndarray, class_names, *, height: int = 600) -> go.Figure:
    """Training replayed: the map, prior samples and reconstructions of each snapshot as one Plotly
    animation, moved together by Plotly's own slider and play button (no server round trip).
    Each frame: {"name", "coords" [P, 2], "samples" and "reconstructions" uint8 grids}."""
    fig = make_subplots(rows=1, cols=3, column_widths=[0.5, 0.25, 0.25], horizontal_spacing=0.04,
                        subplot_titles=(f"posterior means of {len(labels)} test images", "samples from fixed z ~ N(0, I)",
                                        "test images, reconstructed below"))
    classes = [None] if labels is None or (labels < 0).all() else [int(c) for c in np.unique(labels)]

    rows = [np.arange(len(labels)) if c is None else np.flatnonzero(labels == c) for c in classes]

    def traces(frame, *, style: bool):
        """One scatter per class and the two image grids. Only the first frame's scatters carry names and
        styles: an animation frame restates what changes (positions, pictures), which keeps 40 frames cheap."""
        out = []
        for c, r in zip(classes, rows):
            x, y = frame["coords"][r, 0], frame["coords"][r, 1]
            if not style:
                out.append(go.Scatter(x=x, y=y))
                continue
            name = "all points" if c is None else (class_names[c] if class_names and c < len(class_names) else str(c))
            out.append(go.Scatter(x=x, y=y, mode="markers", name=name, hoverinfo="name",
                                  marker=dict(size=6, color=PALETTE[(c or 0) % len(PALETTE)], opacity=0.8)))
        for key in ("samples", "reconstructions"):  # PNG: a few KB per grid, against ~18 KB as a typed array
            out.append(go.Image(source=png_data_uri(frame[key]), hoverinfo="skip"))
        return out

    first = traces(frames[0], style=True)  # the replay starts untrained; ▶ plays it forward
    for i, trace in enumerate(first):
        fig.add_trace(trace, row=1, col=1 if i < len(classes) else 2 + i - len(classes))
    every = list(range(len(first)))
    fig.frames = [go.Frame(data=traces(f, style=False), traces=every, name=f["name"]) for f in frames]
    everything = np.concatenate([f["coords"] for f in frames])
    lo, hi = everything.min(0), everything.max(0)
    pad = 0.05 * (hi - lo) + 1e-3
    fig.update_xaxes(range=[lo[0] - pad[0], hi[0] + pad[0]], row=1, col=1)
    fig.update_yaxes(range=[lo[1] - pad[1], hi[1] + pad[1]], row=1, col=1)
    for col in (2, 3):
        fig.update_xaxes(visible=False, row=1, col=col)
        fig.update_yaxes(visible=False, row=1, col=col)
    steps = [dict(method="animate", label=f["name"],
                  args=[[f["name"]], dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))])
             for f in frames]
    fig.update_layout(
        sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="epoch "), x=0.1, len=0.9, y=0, yanchor="top",
                      pad=dict(t=30))],
        updatemenus=[dict(type="buttons", direction="left", showactive=False, x=0, y=0, xanchor="left", yanchor="top",
                          pad=dict(t=45), buttons=[
            dict(label="▶", method="animate",
                 args=[None, dict(frame=dict(duration=400, redraw=True), fromcurrent=True, transition=dict(duration=0))]),
            dict(label="❚❚", method="animate",
                 args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))])])])
    fig = _layout(fig, height, legend=dict(orientation="h", x=0, y=1.12, yanchor="bottom"))
    fig.update_layout(margin=dict(l=10, r=10, t=90, b=110))
    return fig
