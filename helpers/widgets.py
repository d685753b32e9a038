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

The form can also be forced with ``form="live"`` or ``form="static"``. The grid is
bounded by ``MAX_COMBINATIONS`` in both forms, so a chapter cannot silently make
the build slow.

Used by every chapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt  # noqa: F401 -- the doctest below draws

from ._checks import check_choice, check_int
from ._env import building_book
from .controls import MAX_COMBINATIONS, check_controls, control_kind, initial_setting, label
from .explorers import COMPUTING_DELAY, LiveExplorer, StaticExplorer
from .images import IMAGE_FORMATS, data_uri, render_figure

__all__ = [
    "COMPUTING_DELAY", "IMAGE_FORMATS", "MAX_COMBINATIONS", "LiveExplorer", "StaticExplorer", "control_kind",
    "data_uri", "explore", "label", "render_figure",
]


def explore(
    fn: Callable[..., Any],
    controls: Mapping[str, Sequence[Any]],
    *,
    title: str | None = None,
    form: str | None = None,
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
        form: ``"live"``, ``"static"`` or ``None`` (static while the book is built, i.e.
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
    >>> explorer = explore(curve, {"slope": [1, 2, 3]}, form="static")
    >>> len(explorer.frames)
    3
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    check_choice("form", form, ("live", "static", None))
    check_choice("image_format", image_format, IMAGE_FORMATS)
    check_int("dpi", dpi, minimum=10)
    check_int("max_combinations", max_combinations, minimum=1)
    clean = check_controls(controls, max_combinations)
    if progress is not None and not isinstance(progress, str):
        raise TypeError(f"progress must be a string or None, got {type(progress).__name__}")
    start = initial_setting(clean, initial)
    form = form or ("static" if building_book() else "live")
    if form == "static":
        return StaticExplorer(fn, clean, title=title, image_format=image_format, dpi=dpi, initial=start)
    return LiveExplorer(fn, clean, title=title, image_format=image_format, dpi=dpi, progress=progress,
                        initial=start)
