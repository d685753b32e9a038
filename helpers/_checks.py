"""Argument checks shared by every public helper.

Each check raises ``ValueError`` or ``TypeError`` with a message that names the
argument, the value it got and the valid choices, so that a mistake is caught at
the helper's door and never surfaces as a traceback from deep inside torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError``.

    >>> check_choice("activation", "relu", ["relu", "tanh"])
    'relu'
    """
    choices = list(choices)
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} is not valid; choose one of: {shown}")
    return value


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r} is not valid; it must be an int >= {minimum}")
    return value


def check_number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
) -> float:
    """Return ``float(value)`` if it is a real number within the bounds.

    ``strict=True`` makes the lower bound exclusive (``value > minimum``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if value != value:
        raise ValueError(f"{name}=nan is not valid; it must be a finite number")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        sign = ">" if strict else ">="
        raise ValueError(f"{name}={value!r} is not valid; it must be {sign} {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}={value!r} is not valid; it must be <= {maximum}")
    return value
