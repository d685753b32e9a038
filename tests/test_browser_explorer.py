"""The static explorer in a real browser: every control changes the figure to the
precomputed frame of that setting, from a web server and from file://, with no errors."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from helpers.widgets import explore

from .browser import browser_page, require_browser, serve

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "_build" / "html"


def _figure(depth: int, activation: str, log: bool):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(range(depth), [i * (2 if activation == "relu" else 1) for i in range(depth)])
    ax.set_yscale("log" if log else "linear")
    ax.set_title(f"{activation} {depth} {log}")
    return fig


@pytest.fixture(scope="module")
def explorer_page(tmp_path_factory) -> tuple[Path, dict]:
    explorer = explore(_figure, {"depth": [2, 4, 8], "activation": ["tanh", "relu"], "log": [False, True]},
                       title="test explorer", form="static")
    directory = tmp_path_factory.mktemp("explorer")
    page = directory / "index.html"
    head = "<meta charset='utf-8'><title>t</title><link rel='icon' href='data:,'>"
    page.write_text(f"<!doctype html><html><head>{head}</head><body>{explorer._repr_html_()}</body></html>",
                    encoding="utf-8")
    return page, explorer.frames


def _state(page) -> tuple[str, str]:
    img = page.locator(".tb-explorer img").first
    return img.get_attribute("data-key"), img.get_attribute("src")


def _exercise_controls(page, frames: dict | None = None) -> int:
    """Move every control of the first explorer on the page; assert the frame follows."""
    root = page.locator(".tb-explorer").first
    if frames is None:
        frames = json.loads(root.locator("script.tb-data").text_content())["frames"]
    controls = root.locator("[data-control]")
    key, src = _state(page)
    assert src == frames[key]
    moved = 0
    for i in range(controls.count()):
        control = controls.nth(i)
        tag = control.evaluate("el => el.tagName.toLowerCase() + ':' + (el.type || '')")
        if tag == "input:range":  # to the other end (an explorer may open on its last value)
            top = control.get_attribute("max")
            control.fill("0" if control.input_value() == top else top)
        elif tag.startswith("select"):
            options = control.locator("option")
            last = options.nth(options.count() - 1).get_attribute("value")
            control.select_option(options.first.get_attribute("value") if control.input_value() == last else last)
        elif tag == "input:checkbox":
            control.click()
        else:
            raise AssertionError(f"unknown control {tag}")
        new_key, new_src = _state(page)
        assert new_key != key, f"control {i} ({tag}) did not change the setting"
        assert new_src != src, f"control {i} ({tag}) did not change the figure"
        assert new_src == frames[new_key], "the shown figure is not the precomputed frame of the setting"
        key, src = new_key, new_src
        moved += 1
    return moved


@pytest.mark.parametrize("via", ["http", "file"])
def test_static_explorer_controls_change_the_figure(explorer_page, via):
    executable = require_browser()
    path, frames = explorer_page
    with browser_page(executable) as (page, errors):
        if via == "http":
            with serve(path.parent) as base:
                page.goto(f"{base}/index.html")
                moved = _exercise_controls(page, frames)
        else:
            page.goto(path.as_uri())
            moved = _exercise_controls(page, frames)
        assert moved == 3
        assert errors == []


def test_toolkit_explorer_in_the_built_book():
    executable = require_browser()
    page_path = BOOK / "chapters" / "00_toolkit.html"
    if not page_path.exists():
        pytest.skip("the book is not built (run `make book`)")
    with serve(BOOK) as base, browser_page(executable) as (page, errors):
        page.goto(f"{base}/chapters/00_toolkit.html")
        page.wait_for_load_state("load")
        assert page.locator(".tb-explorer").count() >= 1
        assert _exercise_controls(page) == 2
        assert errors == [], errors
