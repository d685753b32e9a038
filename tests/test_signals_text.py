"""helpers.signals_text: each generated sentence quotes the numbers it is given, formatted as the
chapter prints them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import signals_summaries, signals_text


def test_sentences_quote_their_numbers():
    fr = signals_summaries.FlowRatios(pd.DataFrame({0: [1e-8, 0.12, 0.01]}, index=["sigmoid", "tanh", "relu"]),
                                      pd.Series([0.16]), -8, pd.Series([12.0]))
    assert "about 8 orders of magnitude (a ratio of about 10⁻⁸)" in signals_text.flow_sentence(fr)
    assert signals_text.flow_sentence(fr).endswith("(seed 0).")
    fr3 = signals_summaries.FlowRatios(pd.DataFrame([[1e-8] * 3, [0.12] * 3, [0.01] * 3], index=["sigmoid", "tanh",
                                       "relu"], columns=[0, 1, 2]), pd.Series([0.16] * 3), -8, pd.Series([12.0] * 3))
    assert signals_text.flow_sentence(fr3).endswith("(seeds 0–2).")
    decomp = pd.DataFrame({"backward signal": [0.14, 0.55, 0.41], "input RMS": [1.07, 1.29, 1.35],
                           "weight gradient": [0.16, 0.84, 0.64], "predicted √(E[φ′²]/3)": [0.14, 0.56, 0.42]},
                          index=["sigmoid", "tanh", "relu"])
    assert "0.55 per layer for tanh (predicted 0.56)" in signals_text.backward_factor_sentence(decomp)
    ratios = pd.Series({(20, "tanh", 2.0): 1.18, (20, "tanh", 4.0): 40.2})
    assert "40-fold growth at scale 4" in signals_text.tanh_gain_sentence(ratios, 1.06, 2.9)
    sizing = pd.DataFrame({"first/last ratio": [0.0076, 0.74], "share saturated": [0.2, 0.66]}, index=[4.0, 12.0])
    assert "balanced at 12× Xavier (ratio 0.74), where 66%" in signals_text.sizing_answer(sizing, 12.0)
    assert "rises 3.3 × 10⁷-fold" in signals_text.residual_answer(3.3e7, 0.09, 0.96)
    nan_at = pd.DataFrame({"none": [6.0, 35.0], "weight decay 0.03": [np.nan, 9.0], "residual": [2.0, 3.0],
                           "Kaiming, gain 1": [33.0, np.nan]})
    text = signals_text.fixes_answer(nan_at, 40)
    assert "saves 1 of 2 seeds" in text and "diverges on 1 of 2 seeds" in text
    assert "the other 1 ran the 40 steps" in text
    clipped = pd.DataFrame({"status": ["ok", "diverged"], "final train loss": [1e-4, np.nan],
                            "lowest train loss": [1e-5, np.nan]})
    assert "2 seeds runs the 120 steps without a `nan`" in signals_text.clip_rescue_sentence(clipped, 120)
    assert "a factor 1.1751 per step" in signals_text.steepness_answer({10: 23.0, 80: 2.3e6}, 1.17514, 1.175)
