"""The reference for the app benchmark: a bare Streamlit page with one Plotly WebGL scatter.

`streamlit run bench/bare_scatter_app.py` with BARE_POINTS=<file.npy> (an [N, 2] float32 array)
draws those points and nothing else: what any Streamlit page with a plot of that size costs.
"""
import os

import numpy as np
import plotly.graph_objects as go
import streamlit as st


@st.cache_data
def points(path: str) -> np.ndarray:
    return np.load(path, allow_pickle=False)


xy = points(os.environ["BARE_POINTS"])
st.plotly_chart(go.Figure(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers")), key="bare")
