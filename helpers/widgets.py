"""Explorers: sliders and menus over an experiment, live in Jupyter and Colab, and
still working on the static site.

:func:`explore` takes an experiment function that returns a matplotlib figure and a
grid of control values, and returns

- in a **live** kernel (Jupyter, JupyterLab, Colab): a :class:`LiveExplorer`, real
  ipywidgets controls that re-run the function and redraw its figure. Results are
  memoized (going back to a setting is instant), sliders do not update continuously,
  a "computing…" note (saying what, with ``progress=``) appears while a run takes longer
  than half a second, and an exception inside the function is shown in the page. The grid
  is never precomputed. Only core widgets are used, so that it works in JupyterLab,
  Notebook 7, classic Notebook and Colab (ipywidgets 7 and 8) and VS Code; the first three
  are tested in Chromium (tests/test_browser_live_explorer.py).
- while the **book is built** (``TRAINABILITY_BUILD=1``, set by ``make book``): a
  :class:`StaticExplorer`, which runs the function once for every combination of the
  grid and emits self-contained HTML and JavaScript with the same controls, swapping
  the precomputed images. No kernel, no CDN, no network: it works from a web server
  and from ``file://``.

The mode can also be forced with ``mode="live"`` or ``mode="static"``. The grid is
bounded by ``MAX_COMBINATIONS`` in both modes, so a chapter cannot silently make
the build slow.

Used by every chapter.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt

from ._checks import check_choice, check_int
from ._env import building_book

MAX_COMBINATIONS = 60
IMAGE_FORMATS = ("webp", "png", "svg", "jpeg")
COMPUTING_DELAY = 0.5  # seconds before the "computing…" note appears
_MIME = {"webp": "image/webp", "png": "image/png", "svg": "image/svg+xml", "jpeg": "image/jpeg"}


def _check_controls(controls: Mapping[str, Sequence[Any]], max_combinations: int) -> dict[str, list]:
    if not isinstance(controls, Mapping) or not controls:
        raise TypeError(f"controls must be a non-empty dict of name -> list of values, got {controls!r}")
    clean: dict[str, list] = {}
    for name, values in controls.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"control name {name!r} must be a Python identifier (it is passed as a keyword)")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"controls[{name!r}]={values!r} must be a non-empty list of values")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"controls[{name!r}]={values!r} has repeated values")
        clean[name] = list(values)
    size = 1
    for values in clean.values():
        size *= len(values)
    if size > max_combinations:
        shape = " × ".join(str(len(v)) for v in clean.values())
        raise ValueError(
            f"the control grid has {size} combinations ({shape}), more than the limit of "
            f"{max_combinations}; a static page precomputes every one, so use fewer values"
        )
    return clean


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def control_kind(values: Sequence[Any]) -> str:
    """How a control is drawn: ``"slider"`` (numbers), ``"toggle"`` (two booleans), else ``"menu"``."""
    if all(isinstance(v, bool) for v in values):
        return "toggle"
    if len(values) > 1 and all(_is_number(v) for v in values):
        return "slider"
    return "menu"


def label(value: Any) -> str:
    """The text shown for a control value."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


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


def explore(
    fn: Callable[..., Any],
    controls: Mapping[str, Sequence[Any]],
    *,
    title: str | None = None,
    mode: str | None = None,
    image_format: str = "webp",
    dpi: int = 100,
    max_combinations: int = MAX_COMBINATIONS,
    progress: str | None = None,
    initial: Mapping[str, Any] | None = None,
) -> LiveExplorer | StaticExplorer:
    """An explorer of ``fn`` over the grid ``controls``.

    Args:
        fn: called as ``fn(**setting)``; returns a matplotlib Figure.
        controls: name → list of values. Numbers become sliders, booleans a toggle,
            anything else a menu; the first value is the initial setting unless ``initial``
            names another.
        title: a line shown above the controls.
        mode: ``"live"``, ``"static"`` or ``None`` (static while the book is built, i.e.
            ``TRAINABILITY_BUILD=1``; live otherwise).
        image_format: ``"webp"`` (smallest), ``"png"``, ``"svg"`` or ``"jpeg"``.
        dpi: resolution of the images.
        max_combinations: the largest grid allowed (default ``MAX_COMBINATIONS``).
        progress: what one setting computes, e.g. ``"training 3 nets for 400 steps"``; a live
            explorer shows it in its "computing…" note when a new setting takes long.
        initial: the setting the explorer opens on, for some or all controls, e.g.
            ``{"depth": 20}`` (open on the most telling setting, not the first of each list).

    >>> def curve(slope):
    ...     fig, ax = plt.subplots()
    ...     ax.plot([0, 1], [0, slope])
    ...     return fig
    >>> explorer = explore(curve, {"slope": [1, 2, 3]}, mode="static")
    >>> len(explorer.frames)
    3
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    check_choice("mode", mode, ("live", "static", None))
    check_choice("image_format", image_format, IMAGE_FORMATS)
    check_int("dpi", dpi, minimum=10)
    check_int("max_combinations", max_combinations, minimum=1)
    clean = _check_controls(controls, max_combinations)
    if progress is not None and not isinstance(progress, str):
        raise TypeError(f"progress must be a string or None, got {type(progress).__name__}")
    start = _initial_setting(clean, initial)
    mode = mode or ("static" if building_book() else "live")
    if mode == "static":
        return StaticExplorer(fn, clean, title=title, image_format=image_format, dpi=dpi, initial=start)
    return LiveExplorer(fn, clean, title=title, image_format=image_format, dpi=dpi, progress=progress,
                        initial=start)


def _initial_setting(controls: dict[str, list], initial: Mapping[str, Any] | None) -> dict[str, int]:
    """The index of each control's opening value: 0, or the position of ``initial[name]``."""
    if initial is None:
        initial = {}
    if not isinstance(initial, Mapping):
        raise TypeError(f"initial must be a dict of control name -> value, got {type(initial).__name__}")
    for name, value in initial.items():
        check_choice("initial control", name, list(controls))
        matches = [i for i, v in enumerate(controls[name]) if type(v) is type(value) and v == value]
        if not matches:
            shown = ", ".join(repr(v) for v in controls[name])
            raise ValueError(f"initial[{name!r}]={value!r} is not valid; choose one of: {shown}")
    return {name: next(i for i, v in enumerate(values) if type(v) is type(initial[name]) and v == initial[name])
            if name in initial else 0 for name, values in controls.items()}


class StaticExplorer:
    """Every setting of the grid precomputed, shown with HTML controls and a few lines of JS.

    ``frames`` maps a setting's key (the control value indices joined by ``"-"``) to the
    image's data URI; ``seconds`` is the time the precomputation took.
    """

    def __init__(self, fn: Callable[..., Any], controls: dict[str, list], *, title: str | None,
                 image_format: str, dpi: int, initial: dict[str, int] | None = None) -> None:
        self.controls, self.title, self.image_format = controls, title, image_format
        self.initial = initial or {name: 0 for name in controls}
        start = time.perf_counter()
        self.frames: dict[str, str] = {}
        names = list(controls)
        for indices in itertools.product(*(range(len(v)) for v in controls.values())):
            setting = {n: controls[n][i] for n, i in zip(names, indices)}
            image = render_figure(fn(**setting), image_format, dpi)
            self.frames["-".join(map(str, indices))] = data_uri(image, image_format)
        self.seconds = time.perf_counter() - start
        self.id = "explorer-" + uuid.uuid4().hex[:8]

    def size_bytes(self) -> int:
        """Size of the emitted HTML in bytes (what the explorer adds to its page)."""
        return len(self._repr_html_().encode("utf-8"))

    def _control_html(self, position: int, name: str, values: list) -> str:
        kind = control_kind(values)
        text = html.escape(name.replace("_", " "))
        common = f'data-control="{position}" name="{html.escape(name)}" aria-label="{text}"'
        start = self.initial[name]
        if kind == "slider":
            ticks = html.escape(label(values[start]))
            widget = (f'<input type="range" min="0" max="{len(values) - 1}" step="1" value="{start}" {common}>'
                      f'<output>{ticks}</output>')
        elif kind == "toggle":
            checked = " checked" if values[start] else ""
            widget = f'<input type="checkbox" {common}{checked}>'
        else:
            options = "".join(
                f'<option value="{i}"{" selected" if i == start else ""}>{html.escape(label(v))}</option>'
                for i, v in enumerate(values)
            )
            widget = f"<select {common}>{options}</select>"
        return f'<label class="tb-control"><span>{text}</span>{widget}</label>'

    def _repr_html_(self) -> str:
        labels = {str(i): [label(v) for v in values] for i, values in enumerate(self.controls.values())}
        toggles = {str(i): [bool(v) for v in values]
                   for i, values in enumerate(self.controls.values()) if control_kind(values) == "toggle"}
        controls = "".join(self._control_html(i, n, v) for i, (n, v) in enumerate(self.controls.items()))
        first = "-".join(str(self.initial[name]) for name in self.controls)
        title = f'<div class="tb-title">{html.escape(self.title)}</div>' if self.title else ""
        payload = json.dumps({"frames": self.frames, "labels": labels, "toggles": toggles}).replace("</", "<\\/")
        return f"""<div class="tb-explorer" id="{self.id}" data-explorer="static">
<style>
#{self.id} {{border:1px solid #d0d7de;border-radius:6px;padding:.6em;margin:.5em 0;max-width:100%}}
#{self.id} .tb-title {{font-weight:600;margin-bottom:.3em}}
#{self.id} .tb-controls {{display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center;margin-bottom:.4em}}
#{self.id} .tb-control {{display:inline-flex;gap:.4em;align-items:center;font-size:.9em}}
#{self.id} img {{max-width:100%;height:auto;display:block}}
#{self.id} .tb-note {{font-size:.75em;color:#57606a}}
</style>
{title}<div class="tb-controls">{controls}</div>
<img src="{self.frames[first]}" data-key="{first}" alt="explorer figure">
<div class="tb-note">Precomputed for all {len(self.frames)} settings when the book was built;
open the notebook in Colab to run it live.</div>
<script type="application/json" class="tb-data">{payload}</script>
<script>
(function () {{
  var root = document.getElementById("{self.id}");
  var data = JSON.parse(root.querySelector("script.tb-data").textContent);
  var inputs = root.querySelectorAll("[data-control]");
  var img = root.querySelector("img");
  function index(el) {{
    if (el.type === "checkbox") {{
      return String(data.toggles[el.dataset.control].indexOf(el.checked));
    }}
    return String(el.value);
  }}
  function update() {{
    var key = Array.prototype.map.call(inputs, index).join("-");
    inputs.forEach(function (el) {{
      var out = el.parentNode.querySelector("output");
      if (out) {{ out.textContent = data.labels[el.dataset.control][Number(el.value)]; }}
    }});
    img.src = data.frames[key];
    img.dataset.key = key;
  }}
  inputs.forEach(function (el) {{
    el.addEventListener("input", update);
    el.addEventListener("change", update);
  }});
}})();
</script>
</div>"""


class LiveExplorer:
    """ipywidgets controls over ``fn``, memoized; display it as the last line of a cell.

    ``controls`` holds the widgets by name; setting one's ``value`` re-runs ``fn`` (or
    reuses the memoized image). ``calls`` counts the runs of ``fn``; ``last_error`` holds
    the last exception's text; ``progress`` is what the "computing…" note says is being computed.

    Only core widgets (HTML, Image, VBox, HBox, SelectionSlider, ToggleButtons, Dropdown) are
    used, which every front end renders: JupyterLab, Notebook 7 and classic Notebook, ipywidgets
    7 (Colab) and 8, and @jupyter-widgets/html-manager, on which VS Code's renderer is built. Not
    ``Output``: its model fails to build in classic Notebook with ipywidgets 7, and a failed child
    blanks the whole explorer there.
    """

    def __init__(self, fn: Callable[..., Any], controls: dict[str, list], *, title: str | None,
                 image_format: str, dpi: int, progress: str | None = None,
                 initial: dict[str, int] | None = None) -> None:
        import ipywidgets as widgets

        self.fn, self.values, self.image_format, self.dpi = fn, controls, image_format, dpi
        self.progress = progress
        self.cache: dict[tuple, bytes] = {}
        self.calls = 0
        self.last_error: str | None = None
        self.controls: dict[str, Any] = {}
        initial = initial or {name: 0 for name in controls}
        for name, values in controls.items():
            kind = control_kind(values)
            text = name.replace("_", " ")
            options = [(label(v), v) for v in values]
            start = values[initial[name]]
            if kind == "slider":
                w = widgets.SelectionSlider(options=options, value=start, description=text,
                                            continuous_update=False)
            elif kind == "toggle":
                w = widgets.ToggleButtons(options=options, value=start, description=text)
            else:
                w = widgets.Dropdown(options=options, value=start, description=text)
            w.observe(self._on_change, names="value")
            self.controls[name] = w
        self.status = widgets.HTML(value="")
        # at its own size, not stretched to the width of the output (JupyterLab stretches by default)
        self.image = widgets.Image(format="svg+xml" if image_format == "svg" else image_format,
                                   layout=widgets.Layout(align_self="flex-start", max_width="100%"))
        self.error = widgets.HTML(value="")
        header = [widgets.HTML(value=f"<b>{html.escape(title)}</b>")] if title else []
        row = widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([*header, row, self.status, self.image, self.error])
        for w, name in [(self.widget, "tb-live-explorer"), (self.status, "tb-status"), (self.image, "tb-figure"),
                        (self.error, "tb-error")]:
            w.add_class(name)  # for styles and tests; the same in ipywidgets 7 and 8
        self.refresh()

    def setting(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: w.value for name, w in self.controls.items()}

    def computing_note(self) -> str:
        """The note shown while a new setting takes longer than ``COMPUTING_DELAY``: what, and why."""
        what = f"computing this setting: {html.escape(self.progress)}" if self.progress else "computing this setting"
        return (f"<span style='color:#57606a'>{what}… (the first time only: settings seen before "
                "are shown at once)</span>")

    def _on_change(self, change: dict) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Show the figure for the current setting, computing it unless memoized.

        Each widget is updated only when its value changes, so a memoized or quick new setting
        costs one message to the front end (the image); a slow one adds the note and its removal.
        """
        setting = self.setting()
        key = tuple(setting.items())
        if key not in self.cache:
            lock, done = threading.Lock(), [False]

            def note() -> None:  # from the timer's thread, unless the run has finished
                with lock:
                    if not done[0]:
                        self._set_status(self.computing_note())

            timer = threading.Timer(COMPUTING_DELAY, note)
            timer.daemon = True
            timer.start()
            try:
                self.calls += 1
                self.cache[key] = render_figure(self.fn(**setting), self.image_format, self.dpi, fast=True)
                self.last_error = None
            except Exception as error:  # shown to the reader, not swallowed; from fn's frame on
                self.last_error = "".join(traceback.format_exception(type(error), error, error.__traceback__.tb_next))
                self.error.value = ("<pre style='color:#b00;white-space:pre-wrap;font-size:12px'>"
                                    f"{html.escape(self.last_error)}</pre>")
                self._set_status("<span style='color:#b00'>error: see below</span>")
                self.image.layout.display = "none"  # not the figure of another setting under the error
                return
            finally:
                timer.cancel()
                with lock:
                    done[0] = True
        self.error.value = ""
        self.image.value = self.cache[key]
        self.image.layout.display = None
        self._set_status("")

    def _set_status(self, text: str) -> None:
        self.status.value = text

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
