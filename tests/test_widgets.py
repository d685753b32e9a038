"""helpers.widgets: the grid bound, the static form and the live ipywidgets form."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from helpers import widgets


def _plot(a, b="x"):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, a])
    ax.set_title(str(b))
    return fig


def test_grid_over_the_limit_is_refused_with_its_size():
    with pytest.raises(ValueError, match=r"72 combinations .*limit of 60"):
        widgets.explore(_plot, {"a": list(range(12)), "b": list("abcdef")}, mode="static")


def test_grid_limit_applies_in_live_mode_too():
    with pytest.raises(ValueError, match="combinations"):
        widgets.explore(_plot, {"a": list(range(61))}, mode="live")


@pytest.mark.parametrize("controls", [{}, {"a": []}, {"a": "abc"}, {"not an identifier": [1]}, {"a": [1, 1]}])
def test_bad_controls_are_refused(controls):
    with pytest.raises((ValueError, TypeError), match="controls|control"):
        widgets.explore(_plot, controls, mode="static")


def test_bad_mode_and_format():
    with pytest.raises(ValueError, match="mode='web'"):
        widgets.explore(_plot, {"a": [1]}, mode="web")
    with pytest.raises(ValueError, match="image_format='gif'"):
        widgets.explore(_plot, {"a": [1]}, image_format="gif")


def test_function_must_return_a_figure():
    with pytest.raises(TypeError, match="matplotlib Figure"):
        widgets.explore(lambda a: 1, {"a": [1]}, mode="static")


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

    explorer = widgets.explore(fn, {"a": [1, 2, 3], "b": ["x", "y"]}, mode="static")
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

    explorer = widgets.explore(fn, {"a": [1, 2, 3], "b": ["x", "y"]}, mode="live")
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

    explorer = widgets.explore(fn, {"a": [1, 2]}, mode="live")
    explorer.controls["a"].value = 2
    assert "boom at a=2" in explorer.last_error
    assert "error" in explorer.status.value
    assert "boom at a=2" in explorer.error.value  # shown in the page, not only in a console


def test_live_explorer_shows_computing_for_slow_runs(monkeypatch):
    import time

    monkeypatch.setattr(widgets, "COMPUTING_DELAY", 0.05)
    seen = []

    def fn(a):
        time.sleep(0.3)
        seen.append(explorer_status())
        return _plot(a)

    holder = {}
    explorer_status = lambda: holder["e"].status.value if "e" in holder else ""  # noqa: E731
    holder["e"] = widgets.explore(_plot, {"a": [1, 2]}, mode="live")
    holder["e"].fn = fn
    holder["e"].controls["a"].value = 2
    assert "computing" in seen[-1]
    assert holder["e"].status.value == ""


def test_toggle_control_for_booleans():
    explorer = widgets.explore(lambda flag: _plot(2 if flag else 1), {"flag": [False, True]}, mode="live")
    import ipywidgets

    assert isinstance(explorer.controls["flag"], ipywidgets.ToggleButtons)
    assert widgets.control_kind([False, True]) == "toggle"
    assert widgets.control_kind([1, 2]) == "slider"
    assert widgets.control_kind(["a", "b"]) == "menu"
