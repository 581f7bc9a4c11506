"""Streamlit helpers shared by the pages (app_pages/). vae/ holds the numbers; this package lays them out.

pandas is imported here, once, before any page code runs. Plotly's validators look pandas up in
sys.modules without importing it, so a session building a figure while another session's thread is
half-way through pandas' first import saw a partially initialised module and failed
("partially initialized module 'pandas' has no attribute 'Series'"). Every page imports this
package first, and Python's import lock makes the others wait until this import is complete.
"""
import pandas  # noqa: F401
