"""helpers.text: numbers for generated prose, checked against Python's own formatting."""

from __future__ import annotations

import math

import pytest

from helpers.text import power_of_ten, sci


@pytest.mark.parametrize("value", [3.2e-9, 1.7e-6, 6.7e-11, 123456.0, 9.99e20, -4.2e-7])
def test_sci_agrees_with_the_g_format(value):
    mantissa, exponent = f"{value:.2g}".split("e")
    assert sci(value) == f"{mantissa} × {power_of_ten(int(exponent))}"
    # and it reads back to the same number
    back = sci(value).replace(" × 10", "e").translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789"))
    assert math.isclose(float(back), float(f"{value:.2g}"))


@pytest.mark.parametrize("value, text", [(0.25, "0.25"), (7.0, "7"), (0.0012, "0.0012"), (float("nan"), "nan")])
def test_sci_keeps_plain_numbers_plain(value, text):
    assert sci(value) == text


def test_sci_digits():
    assert sci(3.14159e-8, 4) == "3.142 × 10⁻⁸"
    with pytest.raises(ValueError, match=r"digits=0 is not valid"):
        sci(1.0, 0)


def test_power_of_ten_wants_an_int():
    assert power_of_ten(-12) == "10⁻¹²"
    with pytest.raises(TypeError, match=r"exponent must be an int, got -8.9"):
        power_of_ten(-8.9)


def test_span():
    from helpers.text import span

    assert span([0.5, 0.25, 0.75]) == "0.25–0.75"
    assert span([0.1172, 0.1168], ".3f") == "0.117"  # equal at this precision: one number
    assert span(iter([2.0]), ".1f") == "2.0"
    with pytest.raises(ValueError, match="values is empty"):
        span([])


def test_counts_in_words():
    from helpers.text import count_word, counted, subscript, superscript

    assert [count_word(n) for n in (0, 3, 10, 11)] == ["zero", "three", "ten", "11"]
    assert counted(1, "seed") == "one seed" and counted(3, "seed") == "three seeds"
    assert counted(2, "child", "children") == "two children"
    assert superscript(50) == "⁵⁰" and subscript(10) == "₁₀"
    with pytest.raises(ValueError, match="n=-1"):
        count_word(-1)
