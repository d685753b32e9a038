"""The controls of an explorer: the grid of values, how each control is drawn, its labels.

>>> control_kind([1, 2, 3]), control_kind([True, False]), control_kind(["a", "b"])
('slider', 'toggle', 'menu')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._checks import check_choice

MAX_COMBINATIONS = 60


def check_controls(controls: Mapping[str, Sequence[Any]], max_combinations: int) -> dict[str, list]:
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




def initial_setting(controls: dict[str, list], initial: Mapping[str, Any] | None) -> dict[str, int]:
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
