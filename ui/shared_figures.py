"""Figures built once per server and shared by every session that shows the same thing.

Building a Plotly figure validates every property through plotly's graph objects (a few tens of
milliseconds each), and the home page draws five: that was most of a new visitor's server CPU once the
file watcher and the post-run GC were off (cProfile of the script thread, issue 10). A figure that
depends only on a checkpoint's identity and the page's settings is the same for everyone, so it is
kept here (`st.cache_resource`) and handed out read-only: `st.plotly_chart` copies a figure to send it
(`to_dict`) and never changes it.
"""
from __future__ import annotations

from typing import Callable

import plotly.graph_objects as go
import streamlit as st


@st.cache_resource(max_entries=128, show_spinner=False)
def _shared(name: str, key: tuple, _build: Callable[[], go.Figure]) -> go.Figure:
    return _build()


def shared_figure(name: str, key: tuple, build: Callable[[], go.Figure]) -> go.Figure:
    """`build()`, once per (name, key) per server. `key` must name everything the figure shows (the
    checkpoint's sha256 and each setting), since `build` itself is not part of the cache key."""
    return _shared(name, key, build)
