"""helpers.dying_neuron: the one-neuron tables and sentences against direct computations."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from helpers import dying
from helpers import dying_neuron as dn


def test_loss_frame_is_the_closed_form_and_monte_carlo():
    ws = [-1.0, 0.0, 0.5, 1.0]
    frame = dn.loss_frame(ws, slope=0.3, mc_every=2)
    relu = frame[frame.neuron == "ReLU"].set_index("w").loss
    assert relu[-1.0] == pytest.approx(1.0) and relu[1.0] == pytest.approx(0.0)   # (1 + w²)/2, (1 − w)²/2
    leaky = frame[frame.neuron == "LeakyReLU(0.3)"].set_index("w").loss
    assert leaky[-1.0] == pytest.approx((1 + 1.3**2) / 2)
    mc = frame[frame.neuron == "ReLU, inputs > 0 only"]
    assert mc.w.tolist() == [-1.0, 0.5] and mc.loss.iloc[0] == pytest.approx(1.0, abs=0.02)  # E[x²], x = |N(0, 1)|
    assert max(dn.closed_form_gaps(ws=(-1.0, 1.0), slopes=(0.0,))) < 0.02


def test_seeds_crossed_and_optimizer_table():
    path = torch.tensor([[[-1.0, -1.0, -1.0], [-10.0, -10.0, -10.0]],
                         [[0.5, -0.5, 0.2], [-5.0, -5.0, -4.0]],
                         [[0.9, -0.1, 1.0], [-1.0, -2.0, -3.0]]])   # (steps + 1, 2 starts, 3 seeds)
    assert dn.seeds_crossed(path) == [2, 0]
    table = dn.optimizer_table({"SGD": path}, starts=(-1.0, -10.0))
    row = table.iloc[0]
    assert row["final w (mean of 3 seeds)"] == pytest.approx((0.9 - 0.1 + 1.0) / 3)
    assert row["spread over seeds (max − min)"] == pytest.approx(1.1)
    assert table["crossed 0 (seeds of 3)"].tolist() == [2, 0] and table["start w0"].tolist() == ["-1", "-10"]


def test_verdicts_quote_the_final_weights():
    sgd = torch.tensor([[-2e-5, -3e-5], [-1e-5, -1e-5]])
    mom, adam = torch.ones(2, 2), torch.tensor([[-3.0, -3.0], [1.0, 1.0]])
    leaky = torch.full((2, 2), 1 / 1.09)
    table = dn.verdicts(sgd, mom, adam, adam, leaky, slope=0.3)
    measured = table.set_index("claim in the single-ReLU answer")["measured (mean of 2 seeds)"]
    assert measured["from w0 = −10, plain SGD gets stuck at w ≈ 0"] == "final w ≈ -2.5e-05"
    assert "settles at 0.917 = 1/(1 + 0.3²)" in measured["LeakyReLU(0.3) moves w to 1, the optimum"]
    assert measured["from −10, SGD with momentum does not help"].endswith("w = 1.000 in every seed")


def test_amsgrad_sentence():
    path = torch.tensor([[[-10.0, -10.0], [-1.0, -1.0]], [[-3.0, -2.0], [0.5, 1.0]]])
    text = dn.amsgrad_sentence(path)
    assert "in the 1 steps run it never gets across (highest w reached by any seed: -2.00" in text
    assert "final w -2.50, mean of 2 seeds" in text and "crosses 0 in 2 of 2 seeds and ends at 0.750" in text


def test_jump_table_counts_seeds():
    table = dn.jump_table({0.5: torch.tensor([-0.1, -0.2, 1.0]), 1.2: torch.tensor([1.0, 1.005, 0.5])})
    assert table["seeds at w = 1"].tolist() == ["1/3", "2/3"]
    assert table["seeds still below 0"].tolist() == ["2/3", "0/3"]


def test_sign_map_error_is_small_on_real_paths_and_large_on_a_wrong_rate():
    path, curvature = dying.neuron_paths(lr=0.5, w0=(-1.0,), seeds=2, steps=6)
    assert float(dn.sign_map_error(path, curvature, lr=0.5).max()) < 1e-4
    assert float(dn.sign_map_error(path, curvature, lr=0.25).max()) > 0.1


def test_jump_sentence_names_the_escaping_and_stuck_seeds():
    flips = pd.DataFrame({"seed": [0, 1, 2], "batches with c > 1/lr": [3, 1, 2], "first such step": [3, 50, 1],
                          "crossed 0 at step": [3.0, None, 1.0], "last step that moved w": [200, 30, 200],
                          "final w": [1.0, -1e-39, 1.0]})
    text = dn.jump_sentence(flips, batch=1000, lr=0.9)
    assert "fluctuates by ±0.071" in text and "1/0.9 ≈ 1.11" in text
    assert "at steps 3 and 1 and crossed 0 right there" in text
    assert "had 1 such batches in the 200 steps, the first at step 50" in text
    assert "after step 30, at w = -1.0e-39." in text
