"""helpers.dying_diary: the debugging diary's runs, table and sentences."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from helpers import dying
from helpers import dying_diary as dd
from helpers.train import FitResult, fit


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    return torch.randn(32, 64), torch.randint(0, 10, (32,))


def test_diary_runs_are_the_single_fits(batch):
    runs = dd.diary_runs(batch, {"ReLU": [0, 1], "tanh": [2]}, steps=3, lr=0.1)
    assert sorted(runs) == [("ReLU", 0), ("ReLU", 1), ("tanh", 2)]
    direct = fit(dying.diary_net("ReLU", 1), batch, steps=3, batch_size=None, lr=0.1, seed=1, progress=False)
    assert runs["ReLU", 1].final("accuracy", "train") == pytest.approx(direct.final("accuracy", "train"))
    with pytest.raises(ValueError):
        dd.diary_runs(batch, {"ReLU": [0]}, steps=0)


def summary_frame():
    return pd.DataFrame({
        "variant": ["ReLU", "ReLU", "ReLU, gradient blocked", "leaky ReLU", "leaky ReLU", "leaky ReLU"],
        "seed": [0, 1, 0, 0, 1, 2], "status": ["ok", "ok", "ok", "diverged", "diverged", "ok"],
        "diverged at step": [None, None, None, 12, 30, None],
        "accuracy on the batch": [0.2, 0.22, 0.9, 0.1, 0.1, 0.75],
        "final gradient sum": [0.01, 0.02, 5.0, 1e9, 1e10, 40.0],
        "largest gradient sum": [100.0, 300.0, 50.0, 1e9, 1e10, 2500.0]})


def test_diary_summary_and_sentence():
    summary = summary_frame()
    acc, relu, leaky, majority, fall, overflowed = dd.diary_summary(summary, torch.tensor([1, 1, 1, 2]))
    assert majority == 0.75 and fall.tolist() == [10000.0, 15000.0] and overflowed.tolist() == [True, True, False]
    assert acc["ReLU"].tolist() == [0.2, 0.22]
    text = dd.diary_sentence(summary, majority)
    assert text.startswith("ReLU: accuracy 0.200–0.220 over the two seeds (the most frequent class is 0.750")
    assert "ends at least 10,000 times below its peak. Gradient blocked: accuracy 0.90." in text
    assert "finite in 2 of 3 seeds, at steps 12, 30; the other ended at accuracy 0.75" in text
    assert text.endswith("after a peak gradient sum of 2,500.")


def test_fit_table_style_hides_what_a_diverged_run_lacks():
    html = dd.fit_table_style(summary_frame()).to_html()
    assert "After 300 steps" in html and html.count("–") >= 4


def run_with(grads):
    history = pd.DataFrame([(i, "train", "grad_abs_sum", g) for i, g in enumerate(grads)],
                           columns=["step", "split", "metric", "value"])
    return FitResult(history, "ok", None, len(grads), nn.Identity())


def test_curve_gap_and_shown_seed_sentence():
    assert dd.curve_gap(run_with([1.0, 2.0, 4.0]), run_with([1.1, 2.0, 3.0])) == pytest.approx(0.25)
    text = dd.shown_seed_sentence(2, 17, 0.08, 3)
    assert text == ("Seed 2 is shown: its leaky ReLU run overflowed at step 17, the earliest of the 3 seeds. "
                    "The two BatchNorm curves nearly coincide: at no step do they differ by more than 8%.")
    assert "no leaky ReLU run overflowed." in dd.shown_seed_sentence(0, None, 0.08, 3)


def test_end_snapshots_zero_shares_and_alive_sentence(batch):
    dead = nn.Sequential(nn.Linear(64, 4), nn.ReLU(), nn.Linear(4, 10))
    with torch.no_grad():
        dead[0].bias.fill_(-1e3)   # every unit of the hidden layer is off on every input
    stats, hists = dd.end_snapshots({"dead": dead}, batch[0])
    assert set(hists.variant) == {"dead"}
    shares = dd.zero_shares(stats)
    assert shares.loc[("dead", "frac_dead")].iloc[0] == 1.0
    text = dd.alive_sentence(pd.Series({"hidden1.act": 1.0, "hidden2.act": 0.5}), seed=3, width=4)
    assert "(of 4): hidden1: 0, hidden2: 2. In hidden1 no unit is left" in text
