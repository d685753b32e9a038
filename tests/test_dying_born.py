"""helpers.dying_born: born-dead tables and sentences against the closed form."""

from __future__ import annotations

import pandas as pd
import pytest

from helpers import dying
from helpers import dying_born as db


def test_table_holds_the_closed_form_and_the_simulation():
    table = db.table(widths=(2, 3), depth=4)
    assert len(table) == 8 and table.depth.tolist() == [1, 2, 3, 4] * 2
    row = table.set_index(["width", "depth"]).loc[3, 4]
    assert row["closed form"] == pytest.approx(1 - (1 - 2**-3) ** 4)
    assert row.simulated == dying.born_dead(3, 4)[-1]


def test_by_bias_columns_and_sentence():
    kinds = {"no bias": "none", "symmetric": "symmetric", "positive": "positive"}
    at = db.by_bias(3, 6, kinds)
    assert at.index.tolist() == list(range(1, 7)) and list(at.columns) == list(kinds)
    assert at["symmetric"].tolist() == dying.born_dead(3, 6, bias="symmetric")
    fake = pd.DataFrame({"a": [0.5, 0.8], "b": [0.25, 0.6], "c": [0.1, 0.4]}, index=[1, 2])
    text = db.bias_sentence(fake, depth=2, shallow=1)
    assert text == ("P(dead at init) at depth 1: 0.50 without biases, 0.25 with symmetric biases (50% lower), "
                    "0.10 with positive biases (80% lower). At depth 2: 0.80, 0.60 (25% lower) and 0.40 (50% lower).")


def test_width_check_finds_the_smallest_width():
    w = db.width_check(depth=50, risk=0.01, fewer=3, trials=300)
    assert w.need == 13
    assert dying.born_dead_closed(12, 50) >= 0.01 > dying.born_dead_closed(13, 50)
    assert w.simulated.index.tolist() == [13, 10]
    assert "smallest width with P(dead) &lt; 1 %: 13" in w.style().to_html() or \
        "smallest width with P(dead) < 1 %: 13" in w.style().to_html()
    text = db.width_sentence(w)
    assert text.startswith("**Answer.** Width 13. (1 − 2⁻ᴺ)⁵⁰ ≥ 0.99 needs 2⁻ᴺ ≤ 1 − 0.99^(1/50) ≈ 2.0e-04")
    assert "N ≥ 12.3" in text
    shallow = db.width_sentence(db.width_check(depth=5, risk=0.1, fewer=1, trials=100))
    assert shallow.startswith("**Answer.** Width 6. (1 − 2⁻ᴺ)⁵ ≥ 0.9 needs 2⁻ᴺ ≤ 1 − 0.9^(1/5) ≈ 2.1e-02")
    with pytest.raises(ValueError):
        db.width_check(risk=0.0)
