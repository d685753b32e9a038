"""helpers.normalization_report: the chapter's sentences quote the numbers they are given."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import normalization_report as nr
from helpers.train import FitResult


def fake_run(grad_sums, accuracy=1.0, status="ok", diverged_step=None, model=None):
    """A FitResult with a grad_abs_sum curve and a final training accuracy and loss."""
    rows = [(i + 1, "train", "grad_abs_sum", g) for i, g in enumerate(grad_sums)]
    rows += [(len(grad_sums), "train", "accuracy", accuracy), (len(grad_sums), "train", "eval_loss", 0.01)]
    history = pd.DataFrame(rows, columns=["step", "split", "metric", "value"])
    return FitResult(history, status, diverged_step, len(grad_sums), model or nn.Sequential(nn.ReLU(), nn.Identity()))


def test_damper_outcomes_and_sentence_count_the_seeds():
    runs = pd.DataFrame({"net": ["ReLU"] * 4 + ["leaky ReLU"] * 3,
                         "outcome": ["fits", "stalls", "diverges", "diverges", "diverges", "stalls", "fits"]})
    damper = {("relu", "batch", 0): fake_run([1.0], accuracy=1.0), ("relu", None, 0): fake_run([1.0], 0.2)}
    o = nr.damper_outcomes(runs, damper)
    assert list(o.relu) == ["fits", "stalls", "diverges", "diverges"] and o.bn_loss == [0.01]
    text = nr.damper_sentence(o)
    assert "ReLU fits the 128 examples on 1 of 4 seeds, stalls short of them on 1 and diverges on 2" in text
    assert "leaky ReLU diverges on 1, stalls on 1 and fits on 1" in text


def test_gradient_story_sentence_quotes_the_logs():
    x = torch.randn(4, 3)
    runs = {("relu", None, 2): fake_run([10.0, 100.0, 5.0], accuracy=0.33),
            ("leaky_relu", None, 0): fake_run([300.0, 3e9], status="diverged", diverged_step=3),
            ("relu", "batch", 0): fake_run([302.0, 0.29])}
    story = SimpleNamespace(s_relu=2, s_leaky=0, stall_seeds=[2], growth=[1e7, 3e8], zeros=[0.9, 0.95],
                            bn_late_gap=[0.05, 0.08], bn_early_ratio=2.0)
    text = nr.gradient_story_sentence(story, runs, x)
    assert "fell from a peak of 100 to 5" in text and "at least 10⁷-fold" in text
    assert "loss was NaN at step 3" in text and "any of the 2 seeds" in text and "from 302 to 0.29" in text
    assert nr.gradient_story_sentence(SimpleNamespace(**{**vars(story), "stall_seeds": []}), runs, x).startswith(
        "No ReLU run stalled.")


def grid_frame():
    rows = [{"BatchNorm": bn, "init scale": s, "learning rate": lr,
             "accuracy": 0.95 if (bn or (s == 1.0 and lr == 0.1)) else 0.1}
            for bn in (False, True) for s in (0.5, 1.0, 2.0, 4.0) for lr in (0.01, 0.1, 1.0)]
    return pd.DataFrame(rows)


def test_diagonal_sentence_and_best_small_init():
    grid = grid_frame()
    assert nr.best_small_init(grid) == pytest.approx(0.1)
    text = nr.diagonal_sentence(grid, 0.9)
    assert "(init scale 1) train only at learning rate 0.1, doubled weights at none" in text
    assert "at most 0.10 accuracy" in text


def test_map_sentence_counts_cells():
    m = SimpleNamespace(ok={False: 3, True: 26}, near=pd.DataFrame(), spread_at={False: 1.0, True: 0.01},
                        best_lr_without=0.3, high=pd.DataFrame({"accuracy": [0.95, 0.83]}),
                        high_trains=np.array([True, False]), short=pd.DataFrame({"accuracy": [0.83]}))
    text = nr.map_sentence(m, 0.9, cells=30)
    assert "**3 of 30** without BatchNorm, **26** with it" in text
    assert "1 of the 2 cells train with it; the other reaches 0.83." in text


def test_ioffe_milestones_read_the_frames():
    frame = pd.DataFrame({"step": [1, 200, 400], "accuracy": [0.1, 0.15, 0.5]})
    runs = {(None, 0): frame, ("batch", 0): frame.assign(accuracy=[0.1, 0.9, 0.95])}
    m = nr.ioffe_milestones(runs, seeds=[0], step=200, level=0.2)
    assert m.plain_at == [0.15] and m.bn_at == [0.9] and m.rise_steps == [400]
    assert "first passes 0.2 at step 400 in the plot (seed 0; over the one seed at 400)" in nr.ioffe_sentence(m)
    runs |= {(None, 3): frame.assign(accuracy=[0.1, 0.35, 0.5]), ("batch", 3): frame}
    m = nr.ioffe_milestones(runs, step=400, level=0.3)   # the seeds of runs: 0 and 3
    assert m.seeds == [0, 3] and m.plain_at == [0.5, 0.5] and m.rise_steps == [400, 200]
    text = nr.ioffe_sentence(m)
    assert "test accuracy 0.500–0.950 at step 400 over the two seeds" in text
    assert "first passes 0.3 at step 400 in the plot (seed 0; over the two seeds at 200–400)" in text


def test_batch_size_and_collapse_sentences():
    err = pd.DataFrame({"BatchNorm": [0.6, 0.03, 0.02, 0.05], "GroupNorm": [0.04] * 4, "LayerNorm": [0.03] * 4},
                       index=pd.Index([2, 4, 16, 64], name="per worker"))
    text = nr.batch_size_sentence(err)
    assert "between 0.020 (at 16) and 0.050 (at 64)" in text and "2.5-fold" in text
    assert "at 64 BatchNorm (0.050) is even a little worse" in text and "jumps to 0.600" in text
    text = nr.collapse_sentence({2: 0.076, 64: 0.038}, [0.61, 0.63])
    assert "a change of 4 points" in text and "is 0.610–0.630 on two seeds." in text


def test_exercise_sentences():
    text = nr.eps_sentence(7.1e-5, 2.4e-7, 10.0002)
    assert "With ε = 0 the change is 2.4e-07" in text and "The gradient is 10 times smaller" in text
    assert "The gradient is 9.87 times smaller" in nr.eps_sentence(7.1e-5, 2.4e-7, 9.8731)
    same = nr.tanh_sentence(pd.Series({"before": 0.9001, "after": 0.9004}), 1.1, 7.0)
    assert "are equal to three decimals" in same and "1.1 times" in same and "7.0 times" in same
    assert "differ by 2.0 points" in nr.tanh_sentence(pd.Series({"before": 0.90, "after": 0.92}), 1.1, 7.0)
