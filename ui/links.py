"""A page's state in its URL (`?model=...&start=3&end=41`), so a teacher can hand the class one link.

A page names the widgets it shares: `adopt` seeds each widget's session key from the URL when the
widget has no value yet in this visit of the page (a value that does not parse or is out of range is
ignored, with one sentence), and `publish` writes the current values back, so the address bar is
always the link.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import streamlit as st


@dataclass(frozen=True)
class Link:
    param: str  # name in the URL
    key: str  # the widget's session-state key
    parse: Callable[[str], Any]  # raises ValueError for a value it refuses

    def read(self, raw: str) -> Any:
        try:
            return self.parse(raw)
        except (ValueError, TypeError):
            raise ValueError(f"The link's {self.param}={raw!r} is not valid here and was ignored.") from None


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not lo <= value <= hi:
            raise ValueError(raw)
        return value
    return parse


def float_in(lo: float, hi: float, step: float | None = None) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not lo <= value <= hi:
            raise ValueError(raw)
        return round(round(value / step) * step, 10) if step else value
    return parse


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(raw)
        return raw
    return parse


def adopt(links: list[Link]) -> None:
    """Before the widgets: a widget this visit has not drawn yet takes the URL's value, if it parses.
    (Setting a widget's key before it is drawn is Streamlit's documented way to give it a value; the
    duplicate-default warning that would follow is switched off in .streamlit/config.toml.)"""
    for link in links:
        raw = st.query_params.get(link.param)
        if raw is None or link.key in st.session_state:
            continue
        try:
            st.session_state[link.key] = link.read(raw)
        except ValueError as err:
            st.caption(f":material/link_off: {err}")


def publish(values: dict[str, Any]) -> None:
    """After the widgets: the address bar follows the page (only changed parameters are written)."""
    for param, value in values.items():
        text = f"{value:g}" if isinstance(value, float) else str(value)
        if st.query_params.get(param) != text:
            st.query_params[param] = text
