"""Reading what a page drew in an AppTest (plain functions: the fixtures are in conftest.py beside this file)."""
from __future__ import annotations

import base64
import json

import numpy as np
from streamlit.testing.v1 import AppTest


def figures(at: AppTest) -> list[dict]:
    """Every Plotly chart's figure, as the browser would receive it."""
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def titles(at: AppTest) -> list[str]:
    """Every Plotly chart's title ("" for a chart without one)."""
    return [f["layout"].get("title", {}).get("text", "") for f in figures(at)]


def images(at: AppTest) -> list[str]:
    """Media URLs of the page's images: they name a hash of the image's bytes, so they change with the image."""
    return [img.url for el in at.get("image") for img in el.proto.imgs]


def values(array) -> np.ndarray:
    """A figure's array as the browser receives it: a list, or plotly's typed array {"dtype", "bdata", "shape"}."""
    if isinstance(array, dict):
        flat = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        return flat.reshape([int(n) for n in str(array["shape"]).split(",")]) if "shape" in array else flat
    return np.asarray(array)
