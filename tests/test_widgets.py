"""helpers.widgets: the grid bound, the static form and the live ipywidgets form."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from helpers import explorers, widgets


def _plot(a, b="x"):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, a])
    ax.set_title(str(b))
    return fig


def test_grid_over_the_limit_is_refused_with_its_size():
    with pytest.raises(ValueError, match=r"72 combinations .*limit of 60"):
        widgets.explore(_plot, {"a": list(range(12)), "b": list("abcdef")}, form="static")


def test_grid_limit_applies_in_live_mode_too():
    with pytest.raises(ValueError, match="combinations"):
        widgets.explore(_plot, {"a": list(range(61))}, form="live")


@pytest.mark.parametrize("controls", [{}, {"a": []}, {"a": "abc"}, {"not an identifier": [1]}, {"a": [1, 1]}])
def test_bad_controls_are_refused(controls):
    with pytest.raises((ValueError, TypeError), match="controls|control"):
        widgets.explore(_plot, controls, form="static")


def test_bad_mode_and_format():
    with pytest.raises(ValueError, match="form=.web."):
        widgets.explore(_plot, {"a": [1]}, form="web")
    with pytest.raises(ValueError, match="image_format='gif'"):
        widgets.explore(_plot, {"a": [1]}, image_format="gif")


def test_function_must_return_a_figure():
    with pytest.raises(TypeError, match="matplotlib Figure"):
        widgets.explore(lambda a: 1, {"a": [1]}, form="static")


def test_mode_follows_the_build_variable(monkeypatch):
    monkeypatch.setenv("TRAINABILITY_BUILD", "1")
    assert isinstance(widgets.explore(_plot, {"a": [1, 2]}), widgets.StaticExplorer)
    monkeypatch.delenv("TRAINABILITY_BUILD")
    assert isinstance(widgets.explore(_plot, {"a": [1, 2]}), widgets.LiveExplorer)


def test_static_explorer_precomputes_every_setting():
    calls = []

    def fn(a, b):
        calls.append((a, b))
        return _plot(a, b)

    explorer = widgets.explore(fn, {"a": [1, 2, 3], "b": ["x", "y"]}, form="static")
    assert sorted(calls) == sorted((a, b) for a in [1, 2, 3] for b in "xy")
    assert set(explorer.frames) == {f"{i}-{j}" for i in range(3) for j in range(2)}
    assert len(set(explorer.frames.values())) == 6
    page = explorer._repr_html_()
    assert 'type="range"' in page and "<select" in page
    assert "http://" not in page and "https://" not in page  # no CDN, no network
    assert explorer.size_bytes() == len(page.encode())


def test_live_explorer_reruns_on_value_change_and_memoizes():
    import ipywidgets

    calls = []

    def fn(a, b):
        calls.append((a, b))
        return _plot(a, b)

    explorer = widgets.explore(fn, {"a": [1, 2, 3], "b": ["x", "y"]}, form="live")
    assert isinstance(explorer.widget, ipywidgets.VBox)
    assert isinstance(explorer.controls["a"], ipywidgets.SelectionSlider)
    assert explorer.controls["a"].continuous_update is False
    assert isinstance(explorer.controls["b"], ipywidgets.Dropdown)
    assert calls == [(1, "x")]
    first = explorer.image.value
    explorer.controls["a"].value = 3
    assert calls == [(1, "x"), (3, "x")]
    assert explorer.image.value != first
    explorer.controls["a"].value = 1  # back to a seen setting: memoized, no new run
    assert calls == [(1, "x"), (3, "x")]
    assert explorer.image.value == first
    explorer.controls["b"].value = "y"
    assert calls[-1] == (1, "y")


def test_live_explorer_shows_errors_instead_of_swallowing_them():
    def fn(a):
        if a == 2:
            raise RuntimeError("boom at a=2")
        return _plot(a)

    explorer = widgets.explore(fn, {"a": [1, 2]}, form="live")
    explorer.controls["a"].value = 2
    assert "boom at a=2" in explorer.last_error
    assert "error" in explorer.status.value
    assert "boom at a=2" in explorer.error.value  # shown in the page, not only in a console


def test_live_explorer_shows_computing_for_slow_runs(monkeypatch):
    import time

    monkeypatch.setattr(explorers, "COMPUTING_DELAY", 0.05)
    seen = []

    def fn(a):
        time.sleep(0.3)
        seen.append(explorer_status())
        return _plot(a)

    holder = {}
    explorer_status = lambda: holder["e"].status.value if "e" in holder else ""  # noqa: E731
    holder["e"] = widgets.explore(_plot, {"a": [1, 2]}, form="live")
    holder["e"].fn = fn
    holder["e"].controls["a"].value = 2
    assert "computing" in seen[-1]
    assert holder["e"].status.value == ""


def test_toggle_control_for_booleans():
    explorer = widgets.explore(lambda flag: _plot(2 if flag else 1), {"flag": [False, True]}, form="live")
    import ipywidgets

    assert isinstance(explorer.controls["flag"], ipywidgets.ToggleButtons)
    assert widgets.control_kind([False, True]) == "toggle"
    assert widgets.control_kind([1, 2]) == "slider"
    assert widgets.control_kind(["a", "b"]) == "menu"


# The core widgets that every front end renders: JupyterLab, Notebook 7, classic Notebook, Colab
# (ipywidgets 7 and 8), and VS Code, whose renderer is @jupyter-widgets/html-manager with the
# controls of @jupyter-widgets/controls. VS Code cannot be run here; this is what is checked instead.
CORE_MODELS = {"VBoxModel", "HBoxModel", "HTMLModel", "ImageModel", "SelectionSliderModel",
               "ToggleButtonsModel", "DropdownModel"}


def _tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _tree(child)


def test_live_explorer_uses_only_core_widgets_and_never_output():
    import ipywidgets

    def fn(depth, activation, log):
        if activation == "broken":
            raise RuntimeError("boom")
        return _plot(depth, activation)

    explorer = widgets.explore(fn, {"depth": [1, 2], "activation": ["tanh", "broken"], "log": [False, True]},
                               title="all kinds", form="live")
    explorer.controls["activation"].value = "broken"  # the error view too
    models = {w._model_name for w in _tree(explorer.widget)}
    assert models <= CORE_MODELS, models - CORE_MODELS
    assert {"SelectionSliderModel", "ToggleButtonsModel", "DropdownModel"} <= models
    for w in _tree(explorer.widget):
        assert not isinstance(w, ipywidgets.Output)
        assert w._model_module == w._view_module == "@jupyter-widgets/controls"
        assert w.layout._model_module == "@jupyter-widgets/base"


def test_live_explorer_escapes_its_title():
    explorer = widgets.explore(_plot, {"a": [1, 2]}, title="a < b & c", form="live")
    assert "a &lt; b &amp; c" in explorer.widget.children[0].value


def test_computing_note_says_what_and_why():
    plain = widgets.explore(_plot, {"a": [1, 2]}, form="live")
    assert "computing this setting" in plain.computing_note()
    assert "first time only" in plain.computing_note()
    told = widgets.explore(_plot, {"a": [1, 2]}, form="live", progress="training <3> nets")
    assert "computing this setting: training &lt;3&gt; nets" in told.computing_note()
    with pytest.raises(TypeError, match="progress"):
        widgets.explore(_plot, {"a": [1, 2]}, form="live", progress=3)
    assert isinstance(widgets.explore(_plot, {"a": [1, 2]}, form="static", progress="x"), widgets.StaticExplorer)


def test_live_explorer_hides_the_figure_of_another_setting_under_an_error():
    explorer = widgets.explore(lambda a: _plot(1 / a), {"a": [1, 0]}, form="live")
    explorer.controls["a"].value = 0
    assert "ZeroDivisionError" in explorer.error.value and explorer.image.layout.display == "none"
    explorer.controls["a"].value = 1
    assert explorer.error.value == "" and explorer.image.layout.display is None


def _decoded(image: bytes):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(image)).convert("RGB"), dtype=float)


def _savefig_tight(fig, image_format):
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=image_format, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


@pytest.mark.parametrize("image_format", ["png", "webp", "jpeg"])
@pytest.mark.parametrize("fast", [False, True])
def test_render_figure_matches_savefig_tight(image_format, fast):
    """One draw and a crop give the picture that savefig(bbox_inches="tight") gives with two draws."""
    reference = _decoded(_savefig_tight(_plot(3, "a title"), image_format))
    ours = _decoded(widgets.render_figure(_plot(3, "a title"), image_format, fast=fast))
    assert abs(ours.shape[0] - reference.shape[0]) <= 2 and abs(ours.shape[1] - reference.shape[1]) <= 2
    h, w = min(ours.shape[0], reference.shape[0]), min(ours.shape[1], reference.shape[1])
    assert abs(ours[:h, :w].mean() - reference[:h, :w].mean()) < 3  # the same picture, up to a sub-pixel shift
    assert plt.get_fignums() == []  # closed


def test_render_figure_keeps_artists_beyond_the_figure_edges():
    def suptitled():
        fig = _plot(3)
        fig.suptitle("far above", y=1.4)
        return fig

    reference = _decoded(_savefig_tight(suptitled(), "png"))
    image = _decoded(widgets.render_figure(suptitled(), "png"))
    assert image.shape[0] > 1.5 * 100  # enlarged as savefig does, not cropped to the 1.5-inch figure
    assert image.shape == reference.shape


def test_render_figure_svg_and_type_check():
    assert widgets.render_figure(_plot(2), "svg").lstrip().startswith(b"<?xml")
    with pytest.raises(TypeError, match="matplotlib Figure"):
        widgets.render_figure("not a figure")


def test_live_explorer_sends_only_what_changed():
    """Each trait change is one message to the front end: a memoized or quick new setting costs one."""
    def fn(a):
        if a == 3:
            raise RuntimeError("three")
        return _plot(a)

    explorer = widgets.explore(fn, {"a": [1, 2, 3]}, form="live")
    changes = []
    for w in _tree(explorer.widget):
        w.observe(lambda c: changes.append((c.owner._model_name, c.name)), names=["value", "children"])
        w.layout.observe(lambda c: changes.append(("layout", c.name)), names=["display"])
    slider = ("SelectionSliderModel", "value")  # the reader's move itself
    explorer.controls["a"].value = 2  # new, quick (under COMPUTING_DELAY)
    assert sorted(changes) == [("ImageModel", "value"), slider]
    changes.clear()
    explorer.controls["a"].value = 1  # memoized
    assert sorted(changes) == [("ImageModel", "value"), slider]
    changes.clear()
    explorer.controls["a"].value = 3  # an error: the traceback, the status, the figure hidden
    assert sorted(changes) == [("HTMLModel", "value"), ("HTMLModel", "value"), slider, ("layout", "display")]


def test_explorer_opens_on_the_initial_setting_in_both_forms():
    controls = {"a": [1, 2, 3], "on": [False, True], "kind": ["x", "y"]}
    static = widgets.explore(_plot_any, controls, form="static", initial={"a": 3, "kind": "y"})
    page = static._repr_html_()
    assert 'data-key="2-0-1"' in page and 'value="2"' in page and '<option value="1" selected>' in page
    live = widgets.explore(_plot_any, controls, form="live", initial={"a": 3, "on": True})
    assert live.setting() == {"a": 3, "on": True, "kind": "x"}
    assert live.calls == 1  # the opening figure is the initial setting's


@pytest.mark.parametrize("initial, error, message", [
    ({"depth": 2}, ValueError, r"initial control='depth' is not valid; choose one of: 'a', 'on', 'kind'"),
    ({"a": 4}, ValueError, r"initial\['a'\]=4 is not valid; choose one of: 1, 2, 3"),
    ({"on": 1}, ValueError, r"initial\['on'\]=1 is not valid; choose one of: False, True"),
    ([("a", 1)], TypeError, r"initial must be a dict"),
])
def test_bad_initial_setting_names_the_value_and_the_choices(initial, error, message):
    with pytest.raises(error, match=message):
        widgets.explore(_plot_any, {"a": [1, 2, 3], "on": [False, True], "kind": ["x", "y"]}, form="static",
                        initial=initial)


def _plot_any(**setting):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.set_title(str(sorted(setting.items())))
    return fig
