"""Figures as images for explorers: one encoder, cropped like ``bbox_inches="tight"``, fast.

>>> import matplotlib.pyplot as plt
>>> fig, ax = plt.subplots()
>>> render_figure(fig, "png")[:4]
b'\x89PNG'
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib.pyplot as plt

IMAGE_FORMATS = ("webp", "png", "svg", "jpeg")
_MIME = {"webp": "image/webp", "png": "image/png", "svg": "image/svg+xml", "jpeg": "image/jpeg"}


def render_figure(fig: Any, image_format: str = "webp", dpi: int = 100, *, fast: bool = False) -> bytes:
    """Encode a matplotlib figure cropped to its artists, as ``savefig(bbox_inches="tight")`` does, and close it.

    Raster formats are drawn once and the pixels cropped, where ``savefig`` draws twice (once to find
    the tight box); a figure whose artists reach beyond its edges goes through ``savefig``. ``fast``
    encodes WebP with less effort (a few ms instead of tens, files about a third larger): live
    explorers use it, the static site does not.
    """
    if not hasattr(fig, "savefig"):
        raise TypeError(f"the experiment function must return a matplotlib Figure, got {type(fig).__name__}")
    try:
        if image_format == "svg":
            return _savefig(fig, image_format, dpi, "tight", fast)
        return _render_raster(fig, image_format, dpi, fast)
    finally:
        plt.close(fig)


def _pil_options(image_format: str, fast: bool) -> dict:
    if image_format == "webp":
        return {"quality": 85, "method": 1 if fast else 6}
    if image_format == "jpeg":
        return {"quality": 85}
    return {"compress_level": 1} if fast else {}


def _savefig(fig: Any, image_format: str, dpi: int, bbox: Any, fast: bool) -> bytes:
    buffer = io.BytesIO()
    options = {} if image_format == "svg" else {"pil_kwargs": _pil_options(image_format, fast)}
    fig.savefig(buffer, format=image_format, dpi=dpi, bbox_inches=bbox, **options)
    return buffer.getvalue()


def _render_raster(fig: Any, image_format: str, dpi: int, fast: bool) -> bytes:
    import matplotlib as mpl
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    pad = mpl.rcParams["savefig.pad_inches"]
    if not isinstance(pad, (int, float)) or mpl.rcParams["savefig.transparent"] or any(
            str(mpl.rcParams[f"savefig.{c}"]) != "auto" for c in ("facecolor", "edgecolor")):
        return _savefig(fig, image_format, dpi, "tight", fast)  # settings this shortcut does not mirror
    old_canvas, old_dpi = fig.canvas, fig.dpi
    try:
        fig.set_dpi(dpi)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        box = fig.get_tightbbox(canvas.get_renderer()).padded(pad)  # inches
        width, height = fig.get_size_inches()
        if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height:
            fig.set_canvas(old_canvas)
            return _savefig(fig, image_format, dpi, box, fast)  # savefig enlarges the canvas
        pixels = np.asarray(canvas.buffer_rgba())
        rows, columns = pixels.shape[:2]
        top, bottom = max(0, rows - int(np.ceil(box.y1 * dpi))), min(rows, rows - int(np.floor(box.y0 * dpi)))
        left, right = max(0, int(np.floor(box.x0 * dpi))), min(columns, int(np.ceil(box.x1 * dpi)))
        buffer = io.BytesIO()
        # as FigureCanvasAgg.print_jpg does: blend any transparency onto white
        with mpl.rc_context({"savefig.facecolor": "white"} if image_format == "jpeg" else {}):
            mpl.image.imsave(buffer, pixels[top:bottom, left:right], format=image_format, dpi=dpi,
                             pil_kwargs=_pil_options(image_format, fast))
        return buffer.getvalue()
    finally:
        fig.set_canvas(old_canvas)
        fig.set_dpi(old_dpi)


def data_uri(image: bytes, image_format: str) -> str:
    """A ``data:`` URI for the image bytes."""
    return f"data:{_MIME[image_format]};base64," + base64.b64encode(image).decode("ascii")
