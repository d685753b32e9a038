"""helpers.propagation_text: each generated sentence quotes the numbers it is given, formatted as the
chapter prints them."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from helpers import propagation_text


def test_sentences_quote_their_numbers():
    const = pd.Series({"hidden1: max |row − row 1|": 0.0, "test accuracy": 0.216})
    text = propagation_text.symmetry_sentence(const, pd.Series({"test accuracy": 0.087}),
                                              pd.Series({"test accuracy": 0.924}))
    assert "reaches 22% test" in text and "(9%); random weights reach 92%." in text
    assert "91%–94% of the outputs" in propagation_text.saturation_sentence(pd.Series([0.91, 0.94]))
    drift = propagation_text.relu_drift_sentence(pd.Series([0.84, 1.0]), pd.Series([0.8, 0.04]))
    assert "(ratio 1.19)" in drift and "(ratio 0.050)" in drift
    xt = pd.DataFrame({"layer 1 / layer 10": [1.0, 50.0, 1e-5, 1e-2], "saturated share (mean over layers)":
                       [0.01, 0.6, 0.0, 0.1]}, index=pd.MultiIndex.from_tuples(
        [("tanh", 1.0), ("tanh", 4.0), ("sigmoid", 1.0), ("sigmoid", 4.0)]))
    tanh_acc = pd.DataFrame({1.0: [0.9], round(5 / 3, 3): [0.92], 4.0: [0.5]})
    sig_acc = pd.DataFrame({1.0: [0.1], 4.0: [0.8]})
    text = propagation_text.swapped_table_sentence(xt, tanh_acc, sig_acc)
    assert "by about 3.6 per layer" in text and "as well as k = 1" in text and "(60% of its outputs" in text
    runs = pd.DataFrame({"init": ["Kaiming"] * 3 + ["Xavier (gain 1)"], "status": ["ok", "diverged", "ok", "ok"],
                         "final train loss": [1.0, math.inf, 2.25, 2.3], "test accuracy": [0.7, 0.0, 0.3, 0.1]})
    text = propagation_text.he_sentence(runs, math.log(10) - 0.15)
    assert "median training loss of 2.25" in text and "2 of the 3 runs" in text and "1 of them diverged" in text
    assert "ended no more than 0.15 below the loss of chance" in text
    text = propagation_text.he_sentence(runs, math.log(10) - 0.3)
    assert "2 of the 3 runs ended no more than 0.30 below the loss of chance" in text
    sv = pd.DataFrame({"min": [-4.0, -2.0, -1.2], "median": [-1.0, -1.0, -0.6], "max": [3.0, 0.5, -0.2],
                       "spread_decades": [1.0, 0.8, 0.2]}, index=pd.MultiIndex.from_tuples(
        [("linear", "Gaussian, var 1/n"), ("tanh", "Gaussian, var 1/n"), ("tanh", "orthogonal")]))
    assert "from about 10⁻⁴ to 10³" in propagation_text.singular_value_sentence(sv)
    assert "all 10 output rows" in propagation_text.zero_output_answer(10, 0.93)
    lsuv = pd.DataFrame({"final train loss": [1.0, 2.3], "test accuracy": [0.6, 0.1]})
    text = propagation_text.lsuv_answer(lsuv, 2.15, pd.Series([0.1]), pd.Series([0.5, 0.7]))
    assert "1 of the runs ended no more than 0.15 below" in text and "a median of 60%" in text
    gelu = pd.DataFrame({"layer 1": [0.98, 1.02], "layer 30": [0.5, 4.0]})
    text = propagation_text.gelu_answer(1.7, 1.02, gelu)
    assert "both nets start at variance 0.98–1.02 in layer 1 and end at 0.50–4.00 in layer 30" in text
    assert f"about {1.02**29:.0f}-fold over 29 layers" in text
    gelu = pd.DataFrame({"layer 1": [1.0] * 3, "layer 5": [0.5, 2.0, 4.0], "layer 12": [0.4, 3.0, 6.0]})
    text = propagation_text.gelu_answer(1.7, 1.5, gelu)
    assert f"about {1.5**11:.0f}-fold over 11 layers" in text
    assert "all three nets start at variance 1.00 in layer 1 and end at 0.40–6.00 in layer 12" in text
    summary = pd.DataFrame({"measured: mean": [1.1, 1.0], "measured: min": [1.05, 0.98], "measured: max": [1.2, 1.02],
                            "predicted": [1.09, 1.0]}, index=["ReLU gain √2", "leaky gain √(2/(1+a²))"])
    with pytest.raises(ValueError, match="no 'depth'"):
        propagation_text.leaky_gain_answer(summary, 0.3)
    summary.attrs["depth"] = 30
    text = propagation_text.leaky_gain_answer(summary, 0.3)
    assert f"predicted {1.09**28:.0f}-fold, measured about {1.1**28:.0f}-fold from layer 2 to layer 30 (28 " in text
