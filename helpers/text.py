"""Numbers in the sentences a chapter generates.

A chapter writes the sentences that quote its measurements with
``display(Markdown(f"..."))``, so the text cannot drift from the numbers. myst-nb renders
such an output as CommonMark, where LaTeX is not available, so powers of ten are written
with Unicode superscripts: ``sci(3.2e-9)`` gives ``3.2 × 10⁻⁹``.

Used by chapters 1, 2, 4 and 5.
"""

from __future__ import annotations

import math

import numpy as np

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_SUBSCRIPT = str.maketrans("-0123456789", "₋₀₁₂₃₄₅₆₇₈₉")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def superscript(n: int) -> str:
    """An integer as Unicode superscript digits: ``superscript(50)`` is ``"⁵⁰"``."""
    return str(n).translate(_SUPERSCRIPT)


def subscript(n: int) -> str:
    """An integer as Unicode subscript digits: ``subscript(10)`` is ``"₁₀"``."""
    return str(n).translate(_SUBSCRIPT)


def count_word(n: int) -> str:
    """A count as the sentences write it: a word up to ten, digits from 11 on.

    >>> count_word(3), count_word(0), count_word(12)
    ('three', 'zero', '12')
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n={n!r} is not valid; it must be a count (an integer ≥ 0)")
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` ``noun`` in words, plural unless ``n`` is 1: ``counted(3, "seed")`` is ``"three seeds"``.

    >>> counted(1, "seed"), counted(2, "seed"), counted(12, "epoch")
    ('one seed', 'two seeds', '12 epochs')
    """
    return f"{count_word(n)} {noun if n == 1 else plural or noun + 's'}"


def power_of_ten(exponent: int) -> str:
    """``10`` with ``exponent`` as a Unicode superscript.

    >>> power_of_ten(-9), power_of_ten(5)
    ('10⁻⁹', '10⁵')
    """
    if isinstance(exponent, bool) or not isinstance(exponent, int):
        raise TypeError(f"exponent must be an int, got {exponent!r}; round it first, e.g. round(-8.9)")
    return "10" + str(exponent).translate(_SUPERSCRIPT)


def sci(value: float, digits: int = 2) -> str:
    """``value`` to ``digits`` significant digits, as Python's ``g`` format writes it, but
    with a Unicode power of ten where ``g`` would use an exponent.

    >>> sci(3.2e-9), sci(123456.0), sci(0.25), sci(7.0)
    ('3.2 × 10⁻⁹', '1.2 × 10⁵', '0.25', '7')
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits={digits!r} is not valid; use an int of at least 1")
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa} × {power_of_ten(int(exponent))}"


def span(values, fmt: str = ".2f") -> str:
    """``"low–high"`` of ``values`` (over seeds, say) in format ``fmt``, or a single number
    when the two agree at that precision.

    >>> span([0.912, 0.934, 0.95]), span([0.1172, 0.1168], ".3f"), span([3, 10], "d")
    ('0.91–0.95', '0.117', '3–10')
    """
    values = list(values)
    if not values:
        raise ValueError("values is empty: there is no range to write")
    low, high = format(min(values), fmt), format(max(values), fmt)
    return low if low == high else f"{low}–{high}"


def number(value: float, digits: int = 3) -> str:
    """A measured number as the book prints it: ``digits`` significant digits, one fewer below
    0.01 or from 1000 on (where an exponent carries the size); ``inf`` and ``nan`` as Python
    spells them. Used by the health report's messages and the claims ledger.

    >>> number(0.12345), number(0.0012345), number(12345.0), number(float("inf"))
    ('0.123', '0.0012', '1.2e+04', 'inf')
    """
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e3):
        digits -= 1
    return f"{value:.{max(digits, 1)}g}"
