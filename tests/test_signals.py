"""helpers.signals and helpers.signals_plots: per-layer signals against a hand-written backward pass,
the run summaries against the numbers they summarize, clipping against its definition."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import signals, signals_plots
from helpers.data import make_blobs
from helpers.init import init_
from helpers.models import mlp
from helpers.train import FitResult, fit
from tests.test_hooks import n_hooks


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 64, generator=g), torch.randint(0, 10, (32,), generator=g)


def by_hand(net, x, y, slope):
    """The backward pass written out layer by layer, without hooks: z_l = W_l a_{l-1} + b_l."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    a, ins, outs = x, [], []
    for i, lin in enumerate(linears):
        ins.append(a)
        z = lin(a)
        z.retain_grad()
        outs.append(z)
        if i < len(linears) - 1:
            a = net.hidden_blocks()[i].act(z)
            a.retain_grad()
    nn.functional.cross_entropy(outs[-1], y).backward()
    return {"weight gradient": [float(m.weight.grad.norm()) for m in linears],
            "backward signal": [float(z.grad.norm()) for z in outs],
            "input RMS": [float(a.detach().double().pow(2).mean().sqrt()) for a in ins],
            "signal at input": [math.nan] + [float(a.grad.norm()) for a in ins[1:]],
            "E[φ′²]": [float(slope(z.detach()).pow(2).mean()) for z in outs[:-1]] + [math.nan]}


@pytest.mark.parametrize("act, slope", [("tanh", lambda z: 1 - torch.tanh(z) ** 2),
                                        ("sigmoid", lambda z: torch.sigmoid(z) * (1 - torch.sigmoid(z))),
                                        ("relu", lambda z: (z > 0).float())])
def test_layer_signals_match_a_hand_written_backward_pass(batch, act, slope):
    x, y = batch
    net = signals.deep_net(act, 3, depth=4, width=16)
    measured = signals.layer_signals(net, x, y)
    assert all(p.grad is None for p in net.parameters()) and n_hooks(net) == 0  # left as it was
    expected = by_hand(net, x, y, slope)
    assert list(measured["index"]) == [1, 2, 3, 4, 5]
    for column, values in expected.items():
        np.testing.assert_allclose(measured[column], values, rtol=1e-5, err_msg=column)


def test_layer_signals_keep_existing_gradients_and_check_arguments(batch):
    x, y = batch
    net = signals.deep_net("tanh", 0, depth=2)
    net(x).sum().backward()
    before = [p.grad.clone() for p in net.parameters()]
    first = signals.layer_signals(net, x, y)
    assert all(torch.equal(p.grad, b) for p, b in zip(net.parameters(), before))
    pd.testing.assert_frame_equal(first, signals.layer_signals(net, x, y))  # not accumulated
    with pytest.raises(ValueError, match="needs linear layers and an activation"):
        signals.layer_signals(nn.Sequential(nn.Linear(64, 10)), x, y)
    with pytest.raises(ValueError, match="x has 32 examples but y has 3"):
        signals.layer_signals(net, x, y[:3])
    with pytest.raises(TypeError, match="y must be a torch.Tensor"):
        signals.grad_norms(net, x, [1, 2])


def test_deep_net_is_mlp_plus_init_and_seeded():
    a = signals.deep_net("tanh", 5, depth=3, scheme="xavier_normal", activation="tanh")
    b = init_(mlp(64, 10, depth=3, width=64, activation="tanh"), "xavier_normal", activation="tanh", seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.hidden1.linear.weight, signals.deep_net("tanh", 6, depth=3).hidden1.linear.weight)
    with pytest.raises(ValueError, match="activation='swish' is not valid"):
        signals.deep_net("swish", 0)


def test_grad_norms_profiles_and_table(batch):
    x, y = batch
    net = signals.deep_net("sigmoid", 1, depth=3)
    grads = signals.grad_norms(net, x, y)
    ref = signals.layer_signals(net, x, y)
    np.testing.assert_allclose(grads.value, ref["weight gradient"], rtol=1e-6)
    prof = signals.profiles({"a": {"act": "tanh"}, "b": {"act": "relu"}}, [0, 1], x, y, by="act", depth=3)
    assert set(prof.act) == {"a", "b"} and set(prof.seed) == {0, 1}
    back = signals.table(prof, "backward_signal", act="a")
    assert list(back.columns) == [1, 2, 3] and list(back.index) == [0, 1]
    direct = signals.layer_signals(signals.deep_net("tanh", 1, depth=3), x, y)["signal at input"].iloc[1:]
    np.testing.assert_allclose(back.loc[1], direct, rtol=1e-6)
    sat = signals.table(prof, "frac_saturated", rows=["act", "seed"])
    assert list(sat.index.unique("act")) == ["a"]  # ReLU has no flat tails: NaN, left out of the table
    with pytest.raises(ValueError, match="quantity='grad' is not valid"):
        signals.table(prof, "grad")
    with pytest.raises(TypeError, match="settings must map a label"):
        signals.profiles(["tanh"], [0], x, y)


def test_gradient_flows_compute_each_setting_once(batch):
    x, y = batch
    flows = signals.GradientFlows(x, y)
    g = flows.grads(3, "tanh", 2.0)
    assert flows.grads(3, "tanh", 2.0) is g and len(flows.computed) == 1
    assert flows.first_to_last(3, "tanh", 2.0) == pytest.approx(g.value.iloc[0] / g.value.iloc[-1])
    expected = signals.grad_norms(signals.deep_net("tanh", 0, depth=3, scale=2.0), x, y)
    np.testing.assert_allclose(g.value, expected.value)
    fig = flows.figure(3, "tanh", 2.0)
    assert "first / last" in fig.axes[0].get_title()
    plt.close(fig)


def history(values: dict[str, list[float]], evals: dict[tuple[str, str], list[float]] | None = None) -> pd.DataFrame:
    rows = [(step, "train", metric, v) for metric, vs in values.items() for step, v in enumerate(vs, 1)]
    rows += [(step, split, metric, v) for (metric, split), vs in (evals or {}).items() for step, v in vs]
    return pd.DataFrame(rows, columns=["step", "split", "metric", "value"])


def test_climb_and_outcome_on_made_up_histories():
    diverged = FitResult(history({"grad_abs_sum": [4.0, 2.0, 20.0, 400.0], "loss": [1, 2, 3, 4, math.nan]}),
                         "diverged", 5, 5, nn.Linear(1, 1))
    assert signals.climb(diverged) == {"growth": 200.0, "jump": 20.0}
    assert signals.outcome(diverged)["nan at step"] == 5.0
    assert math.isnan(signals.outcome(diverged)["final train loss"])
    ok = FitResult(history({"loss": [3.0, 0.5, 0.7]}, {("eval_loss", "train"): [(0, 2.0), (3, 0.6)]}),
                   "ok", None, 3, nn.Linear(1, 1))
    assert signals.outcome(ok) == {"status": "ok", "nan at step": pytest.approx(math.nan, nan_ok=True),
                                   "lowest train loss": 0.5, "final train loss": 0.6}
    jumps = signals.DIARY_GRAD_SUMS / signals.DIARY_GRAD_SUMS.shift()
    assert list(signals.DIARY_GRAD_SUMS.index) == list(range(-18, 0)) and round(jumps.max()) == 79


def test_layer_values_against_the_monitor():
    run = fit(mlp(2, 4, depth=2, width=8), make_blobs(120, seed=1), steps=30, monitor={"every": 10},
              progress=False)
    frame = run.monitor.to_frame()
    upd = frame[frame.quantity == "update_ratio"]
    pd.testing.assert_series_equal(signals.layer_values(run, "update_ratio"), upd.groupby("index").value.median())
    last = signals.layer_values(run, "act_mean", "last")
    assert list(last.index) == [1, 2]
    assert last.tolist() == frame[(frame.quantity == "act_mean") & (frame.step == 30)].value.tolist()
    with pytest.raises(ValueError, match="how='first' is not valid"):
        signals.layer_values(run, "act_mean", "first")
    with pytest.raises(ValueError, match="run has no monitor"):
        signals.layer_values(fit(mlp(2, 4, depth=1), make_blobs(40), steps=2, progress=False), "act_mean")


def test_wrong_predictions_by_hand():
    net = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2))
    x = torch.tensor([[3.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    y = torch.tensor([0, 0, 1])  # right, wrong, wrong
    loss = [math.log(1 + math.exp(-3)), math.log(1 + math.e), math.log(1 + math.exp(2))]
    got = signals.wrong_predictions(net, x, y)
    assert got["loss share of wrong predictions"] == pytest.approx((loss[1] + loss[2]) / sum(loss))
    assert got["loss per wrong prediction"] == pytest.approx((loss[1] + loss[2]) / 2)
    assert got["loss per right prediction"] == pytest.approx(loss[0])
    confidence = [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-2))]
    assert got["confidence of wrong predictions"] == pytest.approx(min(confidence))  # torch's lower median


def test_remedy_run_and_table():
    blobs = make_blobs(200, seed=2)
    calm = signals.remedy_run(mlp(2, 4, depth=2, width=16), blobs, seed=0, steps=40, lr=0.1)
    wild = signals.remedy_run(init_(mlp(2, 4, depth=2, width=16), "normal", std=30.0, seed=0), blobs, seed=0,
                              steps=40, lr=50.0)
    assert not calm["diverged"] and calm["test accuracy"] > 0.5 and math.isnan(calm["nan at step"])
    assert wild["diverged"] and math.isnan(wild["test accuracy"]) and wild["nan at step"] <= 40
    runs = pd.DataFrame([{"remedy": "calm", "seed": 0, **calm}, {"remedy": "wild", "seed": 0, **wild}])
    table = signals.remedy_table(runs, {"wild": "lr 50"})
    assert list(table.index) == ["calm", "lr 50"] and list(table.diverged) == ["0 of 1", "1 of 1"]
    assert table.loc["calm", "train loss"] == calm["final train loss"]


def test_activation_curves_against_the_formulas():
    z = torch.linspace(-4, 4, 81)
    curves = signals.activation_curves(["sigmoid", "tanh", "leaky_relu"], z).set_index(["activation", "z"])
    s = torch.sigmoid(z)
    np.testing.assert_allclose(curves.loc["sigmoid"].derivative, s * (1 - s), atol=1e-6)
    np.testing.assert_allclose(curves.loc["tanh"].derivative, 1 - torch.tanh(z) ** 2, atol=1e-6)
    np.testing.assert_allclose(curves.loc["leaky_relu"].derivative, np.where(z > 0, 1.0, 0.01))


def test_clipped_steps_by_definition():
    loss = lambda w, b: 3 * w**2 + 0.5 * b**2  # gradient (6w, b)
    grad, steps = signals.clipped_steps(loss, (2.0, -4.0), lr=0.1, threshold=1.0)
    assert grad.tolist() == [12.0, -4.0]
    raw, by_norm, by_value = (steps.iloc[i] for i in range(3))
    assert (raw["Δw"], raw["Δb"]) == pytest.approx((-1.2, 0.4))
    assert by_norm["step length"] == pytest.approx(0.1) and by_norm["cosine with gradient"] == pytest.approx(1.0)
    assert (by_value["Δw"], by_value["Δb"]) == pytest.approx((-0.1, 0.1))
    assert by_value["cosine with gradient"] == pytest.approx((12 + 4) / (math.sqrt(2) * math.sqrt(160)))
    assert raw["loss before"] == 20.0 and raw["loss after"] == pytest.approx(3 * 0.8**2 + 0.5 * 3.6**2)
    with pytest.raises(ValueError, match="threshold=0.0 is not valid"):
        signals.clipped_steps(loss, (1.0, 1.0), threshold=0.0)
    with pytest.raises(ValueError, match="must name each of the 3 coordinates"):
        signals.clipped_steps(lambda a, b, c: a + b + c, (1.0, 1.0, 1.0))


def test_scan_is_autograd_along_a_grid():
    b = torch.linspace(-1, 1, 5, dtype=torch.float64)
    s = signals.scan(lambda w, b: w * torch.sin(b), torch.tensor(2.0, dtype=torch.float64), b)
    np.testing.assert_allclose(s["|dL/db|"], np.abs(2 * np.cos(b.numpy())))
    np.testing.assert_allclose(s.loss, 2 * np.sin(b.numpy()))


def test_plots_draw_what_they_are_given(batch):
    x, y = batch
    figs = [signals_plots.plot_activations(signals.activation_curves(["tanh", "relu"]))]
    prof = signals.profiles({"one": {"act": "tanh"}}, [0], x, y, depth=3)
    figs.append(signals_plots.plot_profiles(prof))
    assert [len(ax.lines) > 0 for ax in figs[-1].axes] == [True, True]
    run = fit(mlp(2, 4, depth=2, width=8), make_blobs(80), steps=20, monitor={"every": 5}, progress=False)
    figs.append(signals_plots.plot_layer_traces(run.monitor.to_frame()))
    figs.append(signals_plots.plot_climb({"ours": pd.Series([1.0, 10.0], index=[-2, -1]),
                                          "diary": signals.DIARY_GRAD_SUMS}))
    diverged = FitResult(history({"loss": [1.0, 5.0, math.nan]}), "diverged", 3, 3, nn.Linear(1, 1))
    figs.append(signals_plots.plot_loss(diverged, "lr 9", xmax=10))
    assert "diverged" in figs[-1].axes[0].get_title() and any("nan at step 3" in t.get_text()
                                                              for t in figs[-1].axes[0].texts)
    loss = lambda w, b: (w - 5) ** 2 + b**2
    _, steps = signals.clipped_steps(loss, (4.5, -0.5))
    ws, bs = torch.linspace(4, 6, 11, dtype=torch.float64), torch.linspace(-1, 1, 11, dtype=torch.float64)
    figs.append(signals_plots.plot_steps(loss, ws, bs, (4.5, -0.5), steps))
    assert len(figs[-1].axes[0].texts) == 3  # two arrows and the note
    figs.append(signals_plots.plot_cliff(signals.scan(loss, torch.tensor(5.0), bs)))
    assert figs[-1].axes[1].get_yscale() == "log"
    for fig in figs:
        plt.close(fig)
