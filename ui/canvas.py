"""A drawing canvas for one digit: a Streamlit v2 custom component written inline (no build step, no
dependency). The browser keeps the strokes; at the end of each stroke it sends the picture to the
script as a PNG data URL (state "png"), and "Clear" sends None.

streamlit-drawable-canvas was not used: it is unmaintained and built against the old components API.
"""
from __future__ import annotations

import base64
import binascii
import functools

from vae.inputs import MAX_BYTES, InputError

SIDE = 280  # canvas pixels: ten times MNIST's 28, so a finger or a mouse can draw comfortably
STROKE = 20  # pen width; fitted into MNIST's 20-pixel box, a digit's stroke ends up ~2 pixels wide, as in MNIST
_PREFIX = "data:image/png;base64,"

HTML = f"""
<div class="vae-canvas">
  <canvas width="{SIDE}" height="{SIDE}" role="img" aria-label="Drawing canvas: draw one digit"></canvas>
  <div class="row">
    <button type="button" class="clear">Clear</button>
    <span class="hint">Draw one digit, large, with the mouse, a finger or a pen.</span>
  </div>
</div>
"""

CSS = f"""
.vae-canvas canvas {{ width: {SIDE}px; height: {SIDE}px; background: white; border: 2px solid #888;
  border-radius: 6px; cursor: crosshair; touch-action: none; display: block; }}
.vae-canvas .row {{ display: flex; gap: 0.75rem; align-items: center; margin-top: 0.4rem;
  font-family: sans-serif; font-size: 0.9rem; }}
.vae-canvas button {{ padding: 0.25rem 0.9rem; border-radius: 6px; border: 1px solid #888;
  background: white; cursor: pointer; font-size: 0.95rem; }}
"""

# Called by Streamlit on every script run with the current `data`; the canvas element (and its
# pixels) survive between runs, so the handlers are simply re-attached and the drawing stays.
JS = """
export default function (component) {
  const { parentElement, setStateValue, data } = component;
  const canvas = parentElement.querySelector("canvas");
  const ctx = canvas.getContext("2d");
  const blank = () => { ctx.fillStyle = "white"; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  if (!canvas.dataset.ready) { blank(); canvas.dataset.ready = "1"; }
  ctx.strokeStyle = "black"; ctx.fillStyle = "black";
  ctx.lineWidth = data.stroke; ctx.lineCap = "round"; ctx.lineJoin = "round";
  let last = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  const segment = (a, b) => { ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke(); };
  canvas.onpointerdown = (e) => {
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    segment(last, last);  // a tap leaves a dot
  };
  canvas.onpointermove = (e) => { if (last) { const p = at(e); segment(last, p); last = p; } };
  canvas.onpointerup = canvas.onpointercancel = () => {
    if (!last) return;
    last = null;
    setStateValue("png", canvas.toDataURL("image/png"));
  };
  parentElement.querySelector("button.clear").onclick = () => { blank(); setStateValue("png", null); };
}
"""


@functools.cache  # registered once per process, on first use (no work at import time)
def _component():
    from streamlit.components.v2 import component
    return component("vae_draw_canvas", html=HTML, css=CSS, js=JS)


def png_from_data_url(url: str | None) -> bytes | None:
    """The PNG bytes a canvas sent, or None for an empty canvas. Anything else is refused: the URL
    comes from the browser, so it is checked like an upload."""
    if not url:
        return None
    if not isinstance(url, str) or not url.startswith(_PREFIX):
        raise InputError("The drawing arrived in an unexpected format; press Clear and draw again.")
    if len(url) > MAX_BYTES * 4 // 3 + len(_PREFIX) + 4:
        raise InputError("The drawing is too large; press Clear and draw again.")
    try:
        return base64.b64decode(url[len(_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as err:
        raise InputError("The drawing arrived damaged; press Clear and draw again.") from err


def draw_canvas(key: str) -> bytes | None:
    """Show the canvas; return the current drawing as PNG bytes, or None while it is blank."""
    result = _component()(key=key, data={"stroke": STROKE}, width="content", on_png_change=lambda: None)
    return png_from_data_url(result.get("png"))
