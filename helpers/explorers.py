"""The two forms of an explorer (see :func:`helpers.widgets.explore`): a
:class:`StaticExplorer` precomputed for the static page, a :class:`LiveExplorer` of
ipywidgets in a running kernel.
"""

from __future__ import annotations

import html
import itertools
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from .controls import control_kind, label
from .images import data_uri, render_figure

COMPUTING_DELAY = 0.5  # seconds before the "computing…" note appears


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
