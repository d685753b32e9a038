"""helpers.dying_report: the dead-ReLU chapter's numbers and sentences against direct computations."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from helpers import dying, stats
from helpers import dying_report as dr
from helpers.train import FitResult


def test_death_at_init_matches_the_net_at_init():
    x = dying.scaled(255).x_train[:200]
    at_init = dr.death_at_init(x, sizes=(8,), n=5)
    with torch.no_grad():
        h0 = dying.pixels_net().hidden1(x)
    assert at_init[dr.INIT_RATE] == pytest.approx(float((h0 == 0).float().mean()))
    assert at_init["dead on the whole training set"] == pytest.approx(stats.frac_dead(h0))
    assert at_init["dead on a batch of 8 (mean of 5 batches)"] >= at_init["dead on the whole training set"]
    assert torch.equal(dr.hidden_output(dying.pixels_net(), x), h0)


def test_healthy_rate_and_squash_sentences():
    assert dr.healthy_rate_sentence(pd.Series([0.25, 0.5]), 0.49).endswith(
        "ranges from 0.25 to 0.50 over the seeds; at initialization it was 0.49.")
    squash = pd.DataFrame({"activation": ["sigmoid"] * 2 + ["tanh"] * 2, "lr": [0.3, 0.3, 0.1, 0.1],
                           "test accuracy": [0.4, 0.6, 0.2, 0.3], "frozen units": [0.1, 0.2, 0.3, 0.4]})
    assert dr.squash_sentence(squash) == ("At learning rate 0.3 sigmoid reaches 40% to 60% (two seeds); "
                                          "at 0.1 tanh reaches 20% to 30%.")
    three = pd.concat([squash, squash.iloc[[0]]])
    assert "(three seeds)" in dr.squash_sentence(three)
    s = dr.squash_stats(squash)
    assert s.acc_at.max()["sigmoid", 0.3] == 0.6 and s.median_at["tanh", 0.1] == pytest.approx(0.25)
    assert s.frozen_of["tanh", 0.1].tolist() == [0.3, 0.4]


def test_death_onset_and_its_sentence():
    phase = pd.DataFrame({"lr": [0.03, 0.5] * 3, "top": [1, 1, 64, 64, 255, 255],
                          "dead": [0.0, 0.1, 0.3, 0.9, 0.8, 1.0], "test accuracy": [0.9, 0.9, 0.88, 0.1, 0.1, 0.1]})
    assert dr.death_onset(phase) == {1: math.inf, 64: 0.5, 255: 0.03}
    text = dr.onset_sentence(phase)
    assert "pixels in [0, 1]: none; pixels in [0, 64]: 0.5; pixels in [0, 255]: 0.03." in text
    assert "with pixels in [0, 64], 30% of the units are dead, yet the net reaches a test accuracy of 0.88" in text


def test_mild_summary_table_and_sentence():
    mild = pd.DataFrame({"activation": ["relu"] * 3 + ["leaky_relu"] * 3, "seed": [0, 1, 2] * 2,
                         "test accuracy": [0.2, 0.3, 0.4, 0.5, 0.2, 0.6], "dead": [0.9, 0.8, 0.9, 0, 0, 0]})
    by_act, mean_acc, leaky_acc, gain = dr.mild_summary(mild)
    assert mean_acc["relu"] == pytest.approx(0.3) and gain.tolist() == pytest.approx([0.3, -0.1, 0.2])
    assert dr.mild_table(mild).loc["relu", "test accuracy (worst seed)"] == 0.2
    assert dr.mild_sentence(mild).endswith("Leaky ReLU ends ahead of ReLU in 2 of the 3 seeds.")


def test_accuracy_grid_masks_diverged_runs():
    grid = pd.DataFrame({"activation": ["relu", "relu"], "lr": [0.1, 0.5], "test accuracy": [0.9, 0.1],
                         "diverged": [False, True]})
    table = dr.accuracy_grid(grid)
    assert table.loc["relu", 0.1] == 0.9 and math.isnan(table.loc["relu", 0.5])


def test_remedy_rows_keep_the_groups_order():
    remedies = pd.DataFrame({"remedy": ["PReLU", "RReLU", "Leaky ReLU (slope 0.01)", "GELU"], "x": [1, 2, 3, 4]})
    assert dr.remedy_rows(remedies, "leaky").x.tolist() == [3, 1, 2]
    with pytest.raises(ValueError):
        dr.remedy_rows(remedies, "cures")


def test_dead_curves_align_the_monitor_with_the_watch():
    monitored = pd.DataFrame({"step": [10, 20], "layer": "3", "quantity": "frac_dead", "value": [0.2, 0.3]})
    watched = pd.DataFrame({"step": [8, 9, 19, 20], "layer": "3", "quantity": "dead", "value": [0.0, 0.1, 0.2, 0.5]})
    per_batch, whole, same = dr.dead_curves(monitored, watched)
    assert same["3"].tolist() == [0.1, 0.2] and whole.index.tolist() == [8, 9, 19, 20]
    text = dr.inspected_sentence(4, 0.93, pd.Series({"1": 0.0, "3": 0.125}), per_batch - same, after=10)
    assert text.startswith("Seed 4: test accuracy 0.930.") and "module 3: 0.125" in text
    assert "by 0.100 on average (from 0.100 to 0.100)" in text and "Over the last 10 steps" in text
    assert "Over the last 20 steps" in dr.inspected_sentence(4, 0.93, pd.Series({"3": 0.1}), per_batch - same,
                                                             after=0)


def test_row_gradients_match_autograd_and_leave_the_model_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    rows = dr.row_gradients(net, x, y, index=2)
    assert net[2].weight.grad is None
    nn.functional.cross_entropy(net(x), y).backward()
    assert torch.allclose(rows, net[2].weight.grad.abs().sum(1))


def test_dead_and_accuracy_and_fix_table():
    def run(acc):
        history = pd.DataFrame([(1, "test", "accuracy", acc)], columns=["step", "split", "metric", "value"])
        return FitResult(history, "ok", None, 1, nn.Identity())

    frame = dr.dead_and_accuracy([run(0.9), run(0.8)], lambda model: pd.Series({"1": 0.1, "3": 0.3}))
    assert frame.accuracy.tolist() == [0.9, 0.8] and frame["dead (worst layer)"].tolist() == [0.3, 0.3]
    table = dr.fix_table({"a": frame})
    assert table.loc["a", "accuracy (seeds)"] == "0.800–0.900"
    assert table.loc["a", "accuracy (mean)"] == pytest.approx(0.85)


def test_silent_units_and_exercise_sentences():
    out = torch.tensor([[0.0, 0.0, 1.0]] * 19 + [[0.0, 2.0, 1.0]])   # unit 0 dead, unit 1 silent on 95 %
    assert dr.silent_units(nn.Identity(), out, share=0.9) == (1, 1)
    assert dr.silent_sentence(5, 2, share=0.9).startswith("**Answer.** 5 units are zero on more than 90 %")
    assert "zero on more than 80 % of the images" in dr.silent_sentence(5, 2, share=0.8)
    clipped = pd.DataFrame({"dead": [0.95, 1.0], "accuracy": [0.1, 0.1]})
    assert "over the two seeds the share of dead units ends at 0.95–1.00 and the test accuracy at 0.100" in \
        dr.clip_sentence(clipped, 1234.0)
    assert "over the one seed the share" in dr.clip_sentence(clipped.iloc[:1], 1234.0)
    assert "‖x‖ ≈ 1,234 (median)" in dr.clip_sentence(clipped, 1234.0)


def test_watch_frames_stack_the_runs():
    frames = dr.watch_frames({"a": dict(lr=0.001, top=1, steps=2, every=1)}, seed=0)
    assert set(frames.setting) == {"a"} and frames.step.max() == 2
    direct = dying.run(lr=0.001, top=1, steps=2, every=1, seed=0)[1]
    assert frames.drop(columns="setting").equals(direct)


def test_first_steps_scale_with_the_square_of_the_pixel_range():
    fs = dr.first_steps(lr=0.01, top=4, pairs=50)
    assert fs.dots[4] / fs.dots[1] == pytest.approx(16, rel=1e-4)
    direct = dying.run(lr=0.01, top=4, seed=0, steps=10, every=1)[1]
    assert fs.dead_after[0] == pytest.approx(direct.query("quantity == 'dead' and step == 0").value.mean())
    text = dr.first_steps_sentence(fs)
    assert f"{fs.dots[4] / fs.dots[1]:,.0f} times more (4² = 16). At learning rate 0.01 the first" in text
    assert "The share of dead units after 0, 1, 2, 3 and 5 steps: " in text
    assert dr.first_steps_sentence(fs, steps=(0, 10)).endswith(
        f"after 0 and 10 steps: {fs.dead_after[0]:.2f}, {fs.dead_after[10]:.2f}.")
