"""helpers.signals_summaries and helpers.signals_text: each summary against the numbers computed
directly from what it summarizes, each sentence against the numbers it must quote."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import signals, signals_summaries, signals_text
from helpers.train import FitResult
from tests.test_signals import history


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(24, 64, generator=g), torch.randint(0, 10, (24,), generator=g)


def run(sums: list[float], status: str = "diverged") -> FitResult:
    """A made-up run whose loss turns nan after the logged gradient sums (or never, if ``ok``)."""
    losses = [1.0] * len(sums) + ([math.nan] if status == "diverged" else [])
    step = len(losses) if status == "diverged" else None
    return FitResult(history({"grad_abs_sum": sums, "loss": losses}), status, step, len(losses), nn.Linear(1, 1))


def test_slopes_of_the_four_activations():
    curves = signals.activation_curves(["sigmoid", "tanh", "relu", "leaky_relu"], torch.linspace(-6, 6, 121))
    s = signals_summaries.slopes(curves)
    assert list(s.peak.index) == ["sigmoid", "tanh", "relu", "leaky_relu"]
    assert s.peak["sigmoid"] == pytest.approx(0.25) and s.sigmoid_peak_z == pytest.approx(0.0, abs=1e-6)
    z = torch.linspace(-6, 6, 121)
    tail = torch.sigmoid(z) * (1 - torch.sigmoid(z))
    assert s.sigmoid_tail == pytest.approx(float(tail[z.abs() > 5].max()), rel=1e-5)
    assert s.relu_zero_or_one and s.leaky_small_or_one
    assert s.report().startswith("largest slope: sigmoid 0.25, tanh 1, relu 1, leaky_relu 1")
    assert not signals_summaries.slopes(curves, leak=0.2).leaky_small_or_one
    with pytest.raises(ValueError, match="lack the activations"):
        signals_summaries.slopes(curves[curves.activation != "relu"])


def test_flow_ratios_and_backward_factors_against_the_profiles(batch):
    x, y = batch
    flow = signals.profiles({a: {"act": a} for a in ["sigmoid", "tanh", "relu"]}, (0, 1), x, y, by="activation",
                            depth=4)
    fr = signals_summaries.flow_ratios(flow, 4)
    for act in ("sigmoid", "tanh", "relu"):
        for seed in (0, 1):
            g = signals.grad_norms(signals.deep_net(act, seed, depth=4), x, y).value.to_numpy()
            assert fr.ratio.loc[act, seed] == pytest.approx(g[0] / g[-1])
            if act == "sigmoid":
                assert fr.per_layer[seed] == pytest.approx((g[0] / g[3]) ** (1 / 3))
    assert fr.sig_decades == round(float(np.log10(fr.ratio.loc["sigmoid"]).mean()))
    np.testing.assert_allclose(fr.relu_loses, fr.ratio.loc["tanh"] / fr.ratio.loc["relu"])
    assert "first-layer / output-layer gradient norm" in fr.report()
    assert fr.report().endswith("(geometric mean), seeds 0–1: " + ", ".join(f"{v:.3f}" for v in fr.per_layer))
    assert "(seeds 0–1)." in signals_text.flow_sentence(fr)
    with pytest.raises(ValueError, match="lacks the activations"):
        signals_summaries.flow_ratios(flow[flow.activation != "relu"], 4)
    decomp = signals_summaries.backward_factors(["tanh"], (0, 1), x, y, depth=4)
    sizes = [signals.layer_signals(signals.deep_net("tanh", s, depth=4), x, y) for s in (0, 1)]
    back = [(s["backward signal"][0] / s["backward signal"][3]) ** (1 / 3) for s in sizes]
    assert decomp.loc["tanh", "backward signal"] == pytest.approx(np.mean(back))
    slope = [math.sqrt(s["E[φ′²]"][:3].mean() / 3) for s in sizes]
    assert decomp.loc["tanh", "predicted √(E[φ′²]/3)"] == pytest.approx(np.mean(slope))


def test_init_checks_sizing_and_the_first_to_last_grid(batch):
    x, y = batch
    inits = {"big": dict(scheme="normal", std=1.0), "small": dict(scheme="normal", std=0.01),
             "xav": dict(scheme="xavier_normal", activation="tanh")}
    flow = signals.profiles(inits, (0,), x, y, act="tanh", depth=4)
    checks = signals_summaries.init_checks(flow, 4, big="big", small="small", xavier="xav")
    g = signals.grad_norms(signals.deep_net("tanh", 0, depth=4, scheme="normal", std=1.0), x, y).value
    assert checks.loc[0, ("big", "∇W₁ / ∇W_out")] == pytest.approx(g.iloc[0] / g.iloc[-1])
    small = signals.grad_norms(signals.deep_net("tanh", 0, depth=4, scheme="normal", std=0.01), x, y).value
    assert checks.loc[0, ("small", "largest ∇W")] == pytest.approx(small.max())
    assert ("Xavier", "∂L/∂a₁ / ∂L/∂a₄") in checks.columns and ("small", "∂L/∂a₁ / ∂L/∂a₄") in checks.columns
    flows = signals.GradientFlows(x, y)
    grid = signals_summaries.first_to_last_grid(flows, (3,), ("tanh", "relu"), (1.0, 2.0))
    assert grid.index.names == ["depth", "activation", "init scale"] and len(grid) == 4
    assert grid[3, "relu", 2.0] == flows.first_to_last(3, "relu", 2.0)
    sizing = signals_summaries.sigmoid_sizing(x, y, [1.0, 4.0], depth=3)
    net = signals.deep_net("sigmoid", 0, depth=3, scheme="xavier_normal", activation="sigmoid", scale=4.0)
    g = signals.grad_norms(net, x, y).value
    assert sizing.loc[4.0, "first/last ratio"] == pytest.approx(g.iloc[0] / g.iloc[-1])
    assert 0 <= sizing.loc[4.0, "share saturated"] <= 1


def test_divergence_picks_the_median_diverging_seed_and_climbs():
    runs = {0: run([4.0, 2.0, 20.0, 400.0]), 1: run([1.0, 1.0], "ok"), 2: run([1.0, 10.0]),
            3: run([5.0, 1.0, 3.0, 9.0, 90.0])}
    div = signals_summaries.divergence(runs)
    assert div.nan_step.isna().tolist() == [False, True, False, False]
    assert list(div.diverging.index) == [2, 0, 3] and div.shown_seed == 0 and div.end == 5
    assert div.climbs.loc[0].tolist() == [200.0, 20.0] and div.climbs.loc[3, "jump"] == 10.0
    assert div.before_nan().index.tolist() == [-4, -3, -2, -1]
    assert div.diary_jump == pytest.approx(float((signals.DIARY_GRAD_SUMS / signals.DIARY_GRAD_SUMS.shift()).max()))
    assert "nan at step, per seed: 0: 5, 1: never, 2: 3, 3: 6" in div.report()
    sentence = signals_text.divergence_sentence(div)
    assert "on 3 of the 4 seeds, at steps 3, 5, 6" in sentence and "(seed 0)" in sentence
    assert "2 × 10²-fold in 2 updates" in sentence  # from 2 (update 2) to 400 (update 4)
    calm = signals_summaries.divergence({5: run([1.0], "ok")})
    assert calm.shown_seed == 5
    assert "No seed diverged within the 1 steps on this machine (the run shown is seed 5)." == \
        signals_text.divergence_sentence(calm)
    nan_at = signals_summaries.nan_steps({"none": runs, "other": {0: runs[1]}})
    assert nan_at.loc[0, "none"] == 5.0 and math.isnan(nan_at.loc[0, "other"]) and math.isnan(nan_at.loc[3, "other"])


def test_rescue_table_and_its_sentence():
    runs = {"none": {0: run([1.0, 9.0])}, "1": {0: FitResult(history(
        {"loss": [3.0, 1e-5, 0.02]}, {("eval_loss", "train"): [(3, 0.02)]}), "ok", None, 3, nn.Linear(1, 1))}}
    rescue = signals_summaries.rescue_table(runs, [0])
    assert list(rescue["clip norm"]) == ["none", "1"] and rescue.loc[0, "status"] == "diverged"
    clipped = rescue[rescue["clip norm"] != "none"].set_index("seed")
    text = signals_text.clip_rescue_sentence(clipped, 3)
    assert text.startswith("With the clip every seed runs the 3 steps without")
    assert "Seed 0 ends higher again (0.02)" in text


def test_run_layers_and_remedy_details():
    from helpers.data import make_blobs
    from helpers.models import mlp
    from helpers.train import fit

    runs = {s: fit(mlp(2, 4, depth=2, width=8), make_blobs(80, seed=s), steps=20, seed=s, monitor={"every": 5},
                   progress=False) for s in (0, 1)}
    layers = signals_summaries.run_layers(runs, 2)
    assert layers.update.loc[1, 2] == signals.layer_values(runs[1], "update_ratio")[2]
    assert layers.accuracy[0] == runs[0].final() and layers.table().shape == (2 + 2 + 1, 2)
    rows = pd.DataFrame({"remedy": ["a", "a", "r", "r", "res", "res"], "seed": [0, 1] * 3,
                         "test accuracy": [0.1, 0.2, np.nan, np.nan, 0.5, 0.7],
                         "initial train loss": [1, 1, 9, 8, 2, 2],
                         "nan at step": [np.nan, np.nan, 3, 4, np.nan, np.nan],
                         "final train loss": [1.0, 2.0, np.nan, np.nan, 3.0, 5.0],
                         "confidence of wrong predictions": [0.5] * 6})
    d = signals_summaries.remedy_details(rows, ["res", "a", "r"], relu="r", residual="res")
    assert list(d.accuracy.columns) == ["res", "a", "r"] and d.accuracy.loc[1, "res"] == 0.7
    assert d.relu_start.tolist() == [9, 8] and d.relu_nan_step.tolist() == [3, 4]
    assert d.residual_loss_mean == 4.0 and d.residual["confidence of wrong predictions"] == 0.5
    assert "ReLU net, training loss before the first step: 8–9" in d.report()


def test_cliff_edge_and_wall_point_on_a_made_up_wall():
    loss = lambda w, b: w * torch.sigmoid(100 * b)  # a steep step at b = 0, slope 25·w there
    b = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    edge = signals_summaries.cliff_edge(signals.scan(loss, torch.tensor(4.0, dtype=torch.float64), b))
    assert edge.b == pytest.approx(0.0, abs=1e-9) and edge.largest == pytest.approx(100.0)
    left_b = float(b[b < -0.01][-1])  # the last grid point more than 0.01 left of the cliff
    assert edge.left_loss == pytest.approx(4 * torch.sigmoid(torch.tensor(100 * left_b)).item(), rel=1e-6)
    assert "; loss just left 1.00, right 3.00" in edge.report()
    point = signals_summaries.wall_point(loss, torch.tensor(4.0), 0.0, above=50.0, half_width=0.1, points=2001)
    s = torch.sigmoid(torch.tensor(100 * point, dtype=torch.float64))
    assert 400 * float(s * (1 - s)) > 50 and point < 0  # the first grid point past 50 from the left
    assert 400 * float(torch.sigmoid(torch.tensor(100 * (point - 1e-4))) * (1 - torch.sigmoid(
        torch.tensor(100 * (point - 1e-4))))) <= 50
    with pytest.raises(ValueError, match="no point of the grid"):
        signals_summaries.wall_point(loss, torch.tensor(4.0), 0.0, above=1e6)

