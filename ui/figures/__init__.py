"""Plotly figure builders: arrays in, a `go.Figure` out. Nothing here imports streamlit (an architecture
test checks it), so a figure can be built and tested without a page, and shared between sessions.
"""
