"""helpers.propagation_summaries and helpers.propagation_text: each experiment against the same
computation written out with helpers.propagation and helpers.init, each sentence against its numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import init, models, propagation, propagation_summaries, propagation_text, train
from helpers.data import make_blobs


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(160, n_features=8, n_classes=3, seed=0)


def test_symmetry_runs_train_each_start_as_written_out(blobs):
    inits = {"zeros": dict(scheme="zeros"), "random": dict(scheme="xavier_normal", activation="tanh")}
    table = propagation_summaries.symmetry_runs(blobs, inits, width=6, steps=20)
    assert list(table.columns) == ["zeros", "random"]
    net = init.init_(models.mlp(8, 3, depth=2, width=6, activation="tanh"), seed=0, **inits["random"])
    result = train.fit(net, blobs, steps=20, batch_size=64, lr=0.1, seed=0, eval_every=20)
    assert table.loc["test accuracy", "random"] == result.final()
    assert table.loc["hidden1: distinct rows", "random"] == 6 and table.loc["hidden1: distinct rows", "zeros"] == 1
    assert table.loc["distinct predictions", "zeros"] == 1


def test_collapse_and_theory_fit_on_made_up_frames():
    std = pd.DataFrame({"c": [0.5, 0.1, 0.01, 0.001]}, index=pd.Index([1, 2, 3, 4], name="layer"))
    edges = np.linspace(-1, 1, 4)  # bins [-1, -1/3], [-1/3, 1/3], [1/3, 1]: the middle one holds 0
    hists = pd.DataFrame([{"case": "c", "index": i, "bin_left": lo, "bin_right": hi, "density": d}
                          for i, centre in zip(range(1, 5), [0.2, 0.6, 0.9, 1.0])
                          for lo, hi, d in zip(edges[:-1], edges[1:], [(1 - centre) / 2, centre, (1 - centre) / 2])])
    low = propagation_summaries.collapse(std, hists, "c")
    assert low.shrink.tolist() == pytest.approx([0.2, 0.1, 0.1]) and low.half_width == pytest.approx(1 / 3)
    assert low.centre.tolist() == [0.2, 0.6, 0.9, 1.0]
    assert "layers 1, 2, 3: 20%, 60%, 90%" in low.report() and "at least 100.0000%" in low.report()
    with pytest.raises(ValueError, match="no rows of case 'd'"):
        propagation_summaries.collapse(std.rename(columns={"c": "d"}), hists, "d")
    compare = pd.DataFrame({"case": ["r1", "r1", "r2", "r2", "t", "t"], "seed": [0, 1] * 3, "layer": 1,
                            "predicted": [1.0, 1.0, 2.0, 2.0, 1e-6, 1e-6], "ratio": [1.0, 1.2, 1.1, 1.2, 0.99, 1.01]})
    fit = propagation_summaries.theory_fit(compare, ["r1", "r2"])
    assert fit.decades == pytest.approx(math.log10(2e6))
    assert fit.relu_rel_diff == pytest.approx(0.1)  # seed 0: 1.1 / 1.0; seed 1: 1.2 / 1.2
    assert fit.mean_ratio["r1", 1] == pytest.approx(1.1) and fit.seed_spread.loc["t", "max"] == 1.01


def test_slope_gain_table_and_xavier_k_profiles():
    gains = propagation_summaries.slope_gain_table({"sigmoid": 1.0, "relu": 2.0})
    assert gains["slope at 0"].tolist() == [0.25, 1.0] and gains["1 / slope"].tolist() == [4.0, 1.0]
    assert gains.loc["relu", "torch calculate_gain"] == pytest.approx(math.sqrt(2))
    x, y = torch.randn(16, 12), torch.randint(0, 10, (16,))
    widths = [12] + [10] * 10
    table = propagation_summaries.xavier_k_profiles(x, y, widths, ["tanh"], [1.0, 4.0])
    net = models.mlp(12, 10, depth=10, width=widths[1:], activation="tanh", bias=False)
    init.init_(net, "xavier_uniform", activation="identity", scale=4.0, seed=0)
    sat, grad = propagation.gradient_profile(net, x, y)
    assert table.loc[("tanh", 4.0), "layer 1 / layer 10"] == pytest.approx(grad[0] / grad[9])
    short = propagation_summaries.xavier_k_profiles(x, y, widths[:5], ["tanh"], [4.0])
    net = models.mlp(12, 10, depth=4, width=widths[1:5], activation="tanh", bias=False)
    init.init_(net, "xavier_uniform", activation="identity", scale=4.0, seed=0)
    _, grad = propagation.gradient_profile(net, x, y)
    assert short.loc[("tanh", 4.0), "layer 1 / layer 4"] == pytest.approx(grad[0] / grad[3])
    assert short.loc[("tanh", 4.0), "grad norm, layer 4"] == pytest.approx(grad[3])
    assert table.loc[("tanh", 4.0), "saturated share (mean over layers)"] == pytest.approx(sat)


def test_xavier_k_training_and_train_schemes(blobs):
    runs = propagation_summaries.xavier_k_training(blobs, [("tanh", 2, 0.1)], [0], steps=5, batch_size=32)
    assert runs.k.tolist() == [1.0, round(5 / 3, 3), 4.0] and set(runs.activation) == {"tanh"}
    direct, _ = propagation.train_seeds(blobs, [0], model=dict(depth=2, width=64, activation="tanh"),
                                        init_kwargs=dict(scheme="xavier_uniform", activation="identity", scale=4.0),
                                        steps=5, batch_size=32, lr=0.1)
    assert runs.iloc[-1]["test accuracy"] == direct.loc[0, "test accuracy"]
    schemes = {"a": dict(scheme="kaiming_normal"), "b": dict(scheme="xavier_normal")}
    rows, hist = propagation_summaries.train_schemes(blobs, schemes, {"a": [0], "b": [0, 1]},
                                                     model=dict(depth=1, width=8), steps=5)
    assert rows.init.tolist() == ["a", "b", "b"] and set(hist.init) == {"a", "b"}
    with pytest.raises(ValueError, match="seeds has no entry"):
        propagation_summaries.train_schemes(blobs, schemes, {"a": [0]}, model=dict(depth=1), steps=5)


def test_fan_modes_singular_values_and_transfer_gain():
    x = torch.randn(50, 20)
    fan = propagation_summaries.fan_modes(x, [20, 30, 10])
    forward, backward = propagation.relu_moments(x, [20, 30, 10], "fan_out")
    assert fan.loc["fan_out"].tolist() == pytest.approx([forward[-1] / forward[0], backward[0] / backward[-1]])
    assert list(fan.columns) == ["forward: E[x²] at layer 2 / input", "backward: Var[grad] at input / layer 2"]
    sv = propagation_summaries.singular_values([0], depth=3, width=6)
    assert len(sv) == 4 * 6 and set(sv.net) == {"linear", "tanh"}
    direct = propagation.jacobian_singular_values("identity", "orthogonal", 0, depth=3, width=6)
    lin = sv[(sv.net == "linear") & (sv.weights == "orthogonal")]["log10 singular value"]
    np.testing.assert_allclose(lin, np.log10(direct))
    summary = propagation_summaries.singular_value_summary(sv)
    assert summary.loc[("linear", "orthogonal"), "max"] == pytest.approx(lin.max())
    runs = pd.DataFrame({"n": [10, 10, 10, 10], "seed": [0, 0, 1, 1], "start": ["p", "r"] * 2,
                         "acc": [0.6, 0.5, 0.4, 0.45]})
    gap = propagation_summaries.transfer_gain(runs, n="n", start="start", accuracy="acc", pretrained="p", random="r")
    assert gap["gain"].tolist() == pytest.approx([0.1, -0.05])
    text = propagation_text.transfer_sentence(gap)
    assert "2.5 percentage points with 10 labelled examples on average (it helped in 1 of the 2 runs)" in text


def test_leaky_gain_factors_against_the_variances_of_each_draw():
    x = torch.randn(200, 32)
    summary = propagation_summaries.leaky_gain_factors(x, 0.3, [0, 1], depth=5, width=32)
    var = propagation.variances_by_seed(x, [0, 1], model=dict(depth=5, width=32, activation="leaky_relu",
                                                                negative_slope=0.3, bias=False),
                                        init_kwargs=dict(scheme="kaiming_normal", activation="relu",
                                                         negative_slope=0.3))
    measured = (var[5] / var[2]) ** (1 / 3)
    assert summary.loc["ReLU gain √2", "measured: mean"] == pytest.approx(measured.mean())
    assert summary.loc["ReLU gain √2", "predicted"] == pytest.approx(1 + 0.3**2, rel=1e-3)
    assert summary.loc["leaky gain √(2/(1+a²))", "predicted"] == pytest.approx(1.0, rel=1e-6)
    assert summary.attrs["depth"] == 5
    text = propagation_text.leaky_gain_answer(summary, 0.3)
    predicted, mean = (1 + 0.3**2) ** 3, measured.mean() ** 3  # 3 factors, layer 2 to layer 5
    assert f"predicted {predicted:.0f}-fold, measured about {mean:.0f}-fold from layer 2 to layer 5 (3 " in text
    assert f"({summary.loc['leaky gain √(2/(1+a²))', 'measured: mean']:.3f}, predicted 1.000)" in text


def test_reports_lsuv_batches_and_lsuv_report():
    between = pd.DataFrame({"d": [1e-9, 2e-9]})
    text = propagation_summaries.spread_report(between, 1.2e-7, math.log(1.1), math.log(1.5))
    assert "a factor 1.10" in text and "a factor 1.50" in text and "(machine epsilon): 1.2e-07" in text
    assert "(geometric mean of 2 seeds each)" in text
    lsuv = pd.DataFrame({"activation": "relu", "batch": ["LSUV batch", "LSUV batch", "other digits", "other digits"],
                         "layer": [1, 2, 1, 2], "variance": [1.0, 1.0, 0.8, 0.9]})
    batches = propagation_summaries.lsuv_batches(lsuv)
    assert len(batches.own) == 2 and batches.other.loc[2, "relu"] == 0.9
    assert "within 1.000–1.000" in batches.report()
    lsuv_runs = pd.DataFrame({"final train loss": [1.0, 2.0], "test accuracy": [0.5, 0.7]},
                             index=pd.Index([0, 1], name="seed"))
    he = pd.DataFrame({"init": ["Kaiming", "Kaiming", "Xavier (gain 1)"], "final train loss": [1.5, 1.7, 2.3],
                       "test accuracy": [0.6, 0.4, 0.1]})
    report = propagation_summaries.lsuv_report(lsuv_runs, he)
    assert "median over seeds (LSUV 2, Kaiming 2, Xavier 1)" in report and "Kaiming, 300 steps" in report

