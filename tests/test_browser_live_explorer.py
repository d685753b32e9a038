"""Live explorers in real Jupyter front ends, driven in Chromium as a reader would.

A real Jupyter server (tests/jupyter.py) serves a small notebook that builds chapter 00's
explorer (a slider, a menu, and here also a toggle) and one whose experiment fails on one
setting. The notebook is run with the keyboard; each kind of control is moved with the mouse or
the keyboard; the figure (its image bytes) must change, and no error may appear. Errors inside
an experiment must be shown in the page.

Front ends: JupyterLab 4 and Notebook 7 with ipywidgets 8 (.venv); classic Notebook 6.5.7 with
ipywidgets 7.7.1 and widgetsnbextension 3.6.10, Colab's widget versions (.venv-widgets7).

The time from moving a control to the new figure being shown is printed (``pytest -s``) for a
new setting and for a memoized one; it is not asserted (the machine is shared).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from pathlib import Path

import nbformat
import pytest

from .browser import browser_page, require_browser
from .jupyter import jupyter_server

TIMEOUT = 60_000  # ms, for the kernel to start and the notebook to run on a loaded 2-core machine
FAILURE = "explorer test failure at case=broken"
SLOW = 2.0  # seconds the slow setting takes, longer than widgets.COMPUTING_DELAY
PROGRESS = "sleeping for the test"  # what the slow setting says it computes

# Chapter 00's explorer ("An explorer"), with a toggle added so that every kind of control is there.
SETUP = """\
import ipywidgets
import matplotlib.pyplot as plt
import torch

from helpers import data, models, monitor, plots, widgets

torch.set_num_threads(1)
print("ipywidgets", ipywidgets.__version__)
digits = data.load_digits("standardized", seed=0)"""

EXPLORER = """\
def activation_spread(depth: int, activation: str, log_scale: bool):
    torch.manual_seed(0)
    fresh = models.mlp(digits.n_features, digits.n_classes, depth=depth, width=64, activation=activation)
    spread, _ = monitor.snapshot(fresh, digits.x_train[:256])
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    plots.layer_lines(spread, "act_std", ax=ax, logy=log_scale,
                      title=f"{activation}, {depth} layers: activation std per layer")
    return fig


widgets.explore(activation_spread, {"depth": [2, 5, 10, 20], "activation": ["tanh", "relu", "sigmoid"],
                                    "log_scale": [True, False]},
                title="Activation spread at initialization", form="live")"""

FRAGILE = f"""\
import time


def fragile(case: str):
    if case == "broken":
        raise RuntimeError("{FAILURE}")
    if case == "slow":
        time.sleep({SLOW})
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1 if case == "fine" else 2])
    return fig


widgets.explore(fragile, {{"case": ["fine", "slow", "broken"]}}, form="live", progress="{PROGRESS}")"""

# Errors that Notebook 7.6.5 logs while it starts, with or without widgets (an empty notebook gives
# them too): its shortcuts plugin reads the settings schema of a JupyterLab plugin that Notebook 7
# does not load, and a command of the file browser that it does not have.
STARTUP_ERRORS = {
    "notebook7": ("page error: Cannot read properties of undefined (reading 'schema')",
                  "page error: Command 'filebrowser:open-path' not registered."),
}

FRONT_ENDS = {  # name -> (server kind, URL of its notebook page, widgets version the kernel prints)
    "jupyterlab4": ("lab", "lab/tree/", "8."),
    "notebook7": ("lab", "notebooks/", "8."),
    "classic-notebook6.5+ipywidgets7": ("classic", "notebooks/", "7.7.1"),
}

# Recorded in the page: the reader's last input of a move (release of the mouse or key, the menu's
# change) before the figure changes (t0), and when the figure's <img> has a new src that has loaded
# and been painted (t1).
ARM = """(img) => {
  const state = {t0: null, t1: null, src: img.getAttribute("src"), changed: false};
  window.__tb = state;
  const mark = (e) => { if (!state.changed) state.t0 = e.timeStamp; };
  for (const type of ["pointerdown", "pointerup", "keydown", "keyup", "click", "input", "change"]) {
    window.addEventListener(type, mark, {capture: true});
  }
  const shown = () => requestAnimationFrame(() => { state.t1 = performance.now(); });
  const observer = new MutationObserver(() => {
    if (img.getAttribute("src") === state.src) return;
    observer.disconnect();
    state.changed = true;
    if (img.complete && img.naturalWidth > 0) shown(); else img.addEventListener("load", shown, {once: true});
  });
  observer.observe(img, {attributes: true, attributeFilter: ["src"]});
}"""

IMAGE_BYTES = """async (img) => {
  const buffer = await (await fetch(img.src)).arrayBuffer();
  let text = ""; for (const b of new Uint8Array(buffer)) text += String.fromCharCode(b);
  return btoa(text);
}"""


def _notebook(front_end: str) -> str:
    """The test notebook of a front end: one each, so that each starts its own kernel."""
    return f"live-{front_end.split('+')[0]}.ipynb"


@pytest.fixture(scope="module")
def notebook_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("live")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in (SETUP, EXPLORER, FRAGILE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for front_end in FRONT_ENDS:
        nbformat.write(nb, root / _notebook(front_end))
    return root


@pytest.fixture(scope="module")
def servers(notebook_dir):
    """One server of each kind, started when first asked for; all stopped after the module."""
    with contextlib.ExitStack() as stack:
        started: dict[str, object] = {}

        def get(kind: str):
            if kind not in started:
                started[kind] = stack.enter_context(jupyter_server(kind, notebook_dir))
            return started[kind]

        yield get


def _run_notebook(page, server, front_end: str) -> None:
    """Once the kernel is up, run every cell with Shift+Enter, as a reader does."""
    classic = front_end.startswith("classic")
    cell = ".cell" if classic else ".jp-Notebook .jp-Cell"
    page.locator(cell).first.wait_for(timeout=TIMEOUT)
    server.wait_for_idle_kernel(_notebook(front_end), TIMEOUT / 1000)
    if classic:
        page.wait_for_function("window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && "
                               "Jupyter.notebook.kernel.is_connected()", timeout=TIMEOUT)
        page.locator(".cell .input_area").first.click()
    else:
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=TIMEOUT)
        page.locator(".jp-Cell .jp-InputPrompt").first.click()
    for _ in range(page.locator(cell).count()):
        page.keyboard.press("Shift+Enter")


class Figure:
    """The figure of one explorer: its bytes, and the time a control move takes to change them."""

    def __init__(self, page, explorer):
        self.page, self.explorer = page, explorer
        self.img = explorer.locator("img.tb-figure")

    def shown(self) -> bytes:
        self.img.and_(self.page.locator("[src]")).wait_for(timeout=TIMEOUT)
        return base64.b64decode(self.img.evaluate(IMAGE_BYTES))

    def move(self, action) -> tuple[bytes, float]:
        """Do ``action`` (a user's move); wait for the new figure; return its bytes and the seconds."""
        self.img.evaluate(ARM)
        action()
        self.page.wait_for_function("window.__tb.t1 !== null && window.__tb.t0 !== null", timeout=TIMEOUT)
        state = self.page.evaluate("window.__tb")
        return self.shown(), (state["t1"] - state["t0"]) / 1000

    def status(self) -> str:
        return self.explorer.locator(".tb-status").inner_text()

    def error(self) -> str:
        return self.explorer.locator(".tb-error").inner_text()


def _wait_until(locator, condition: str) -> None:
    """Wait until ``condition``, JavaScript about the element ``e``, holds."""
    locator.page.wait_for_function(f"(e) => {condition}", arg=locator.element_handle(), timeout=TIMEOUT)


def _slider_drag(explorer, steps: int, positions: int):
    """Drag the slider's handle ``steps`` positions (of ``positions``) with the mouse."""
    handle = explorer.locator(".widget-slider .noUi-handle, .widget-slider .ui-slider-handle").first
    track = explorer.locator(".widget-slider .noUi-target, .widget-slider .ui-slider").first
    mouse = explorer.page.mouse

    def drag():
        box, width = handle.bounding_box(), track.bounding_box()["width"]
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        mouse.move(x, y)
        mouse.down()
        mouse.move(x + steps * width / (positions - 1), y, steps=5)
        mouse.up()

    return drag


def _slider_key(explorer, key: str):
    handle = explorer.locator(".widget-slider .noUi-handle, .widget-slider .ui-slider-handle").first
    return lambda: handle.press(key)


def _toggle_other(explorer):
    return lambda: explorer.locator(".widget-toggle-buttons button:not(.mod-active)").first.click()


def _choose(explorer, label: str):
    select = explorer.locator(".widget-dropdown select").first
    return lambda: select.select_option(label=label)


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_live_explorer_in_a_real_front_end(front_end, servers, tmp_path):
    executable = require_browser()
    kind, path, version = FRONT_ENDS[front_end]
    server = servers(kind)
    with (browser_page(executable, height=1400) as (page, errors), _evidence(page, server, tmp_path),
          _kernels_shut_down(server)):
        start = time.perf_counter()
        page.goto(server.page(path + _notebook(front_end)))
        _run_notebook(page, server, front_end)
        explorers = page.locator(".tb-live-explorer")
        explorers.nth(1).wait_for(timeout=TIMEOUT)
        output = page.locator(".jp-OutputArea-output, .output_subarea").first.inner_text()
        assert re.search(rf"ipywidgets {re.escape(version)}", output), output
        explorer = explorers.nth(0)
        figure = Figure(page, explorer)
        shown = figure.shown()
        ready = time.perf_counter() - start
        times: dict[str, list[float]] = {"new": [], "memoized": []}
        moves = [  # (what, action, memoized?)
            ("slider, dragged", _slider_drag(explorer, 1, 4), False),
            ("slider, dragged back", _slider_drag(explorer, -1, 4), True),
            ("toggle", _toggle_other(explorer), False),
            ("menu", _choose(explorer, "relu"), False),
            ("toggle back", _toggle_other(explorer), False),
            ("menu back", _choose(explorer, "tanh"), True),
        ]
        if front_end != "notebook7":
            # Notebook 7.6 swallows the arrow keys before they reach a focused ipywidgets slider
            # (JupyterLab 4.6 and classic Notebook pass them on); there the slider is dragged only.
            moves.append(("slider, arrow key", _slider_key(explorer, "ArrowRight"), True))
        seen = {shown}
        for what, action, memoized in moves:
            try:
                new, seconds = figure.move(action)
            except Exception as error:
                raise AssertionError(f"{front_end}: after moving the {what}, no new figure: {error}") from error
            assert new != shown, f"{front_end}: moving the {what} did not change the figure"
            assert (new in seen) == memoized, f"{front_end}: the {what} showed an unexpected figure"
            assert figure.error() == "" and "error" not in figure.status(), figure.error()
            times["memoized" if memoized else "new"].append(seconds)
            seen.add(new)
            shown = new

        # a slow setting says that it is being computed, and why it takes long
        fragile = Figure(page, explorers.nth(1))
        fine = fragile.shown()
        fragile.img.evaluate(ARM)
        _choose(explorers.nth(1), "slow")()
        explorers.nth(1).locator(".tb-status", has_text="computing").wait_for(timeout=TIMEOUT)
        computing = fragile.status()
        assert PROGRESS in computing and "first time" in computing, computing
        page.wait_for_function("window.__tb.t1 !== null", timeout=TIMEOUT)
        _wait_until(explorers.nth(1).locator(".tb-status"), "e.textContent === ''")  # the note goes


        # an exception inside the experiment is shown in the page, and going back clears it
        _choose(explorers.nth(1), "broken")()
        # (three messages: the traceback, the status, the figure hidden)
        _wait_until(explorers.nth(1).locator(".tb-error"), f"e.textContent.includes({json.dumps(FAILURE)})")
        _wait_until(explorers.nth(1).locator(".tb-status"), "e.textContent.includes('error')")
        fragile.img.wait_for(state="hidden", timeout=TIMEOUT)  # not the figure of another setting
        assert "RuntimeError" in fragile.error()
        _choose(explorers.nth(1), "fine")()
        fragile.img.wait_for(state="visible", timeout=TIMEOUT)
        _wait_until(explorers.nth(1).locator(".tb-status"), "e.textContent === ''")
        assert fragile.shown() == fine and fragile.error() == ""

        assert page.locator("text=Error displaying widget").count() == 0
        known = STARTUP_ERRORS.get(front_end, ())
        assert [e for e in errors if e not in known] == [], errors
        print(f"\n[{front_end}] notebook run and first figure shown in {ready:.1f} s; control → figure: "
              f"new setting {_summary(times['new'])}, memoized {_summary(times['memoized'])}; "
              f"a slow setting shows {computing!r}")


@contextlib.contextmanager
def _kernels_shut_down(server):
    """Shut the test's kernel down at the end, so that the next front end starts its own."""
    try:
        yield
    finally:
        server.shutdown_kernels()


@contextlib.contextmanager
def _evidence(page, server, directory: Path):
    """On a failure, keep a screenshot of the page and the server's log, and say where they are."""
    try:
        yield
    except Exception as error:
        with contextlib.suppress(Exception):
            page.screenshot(path=directory / "page.png", full_page=True)
        raise AssertionError(f"{error}\n(screenshot: {directory / 'page.png'}; server log: {server.log})") from error


def _summary(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values) + " s"
