"""helpers.train: determinism, divergence, clipping, optimizers, history, evaluation; helpers.seed."""

from __future__ import annotations

import copy
import math
import random

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers.data import make_blobs
from helpers.init import init_
from helpers.models import mlp
from helpers.monitor import Monitor
from helpers.seed import seed_everything
from helpers.train import FitResult, evaluate, fit


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(240, 4, 2, seed=1)  # four blobs a small net separates (98 % test accuracy)


def net(seed: int = 1, **kw) -> nn.Module:
    return init_(mlp(2, 4, depth=kw.pop("depth", 2), width=kw.pop("width", 16), **kw), "kaiming_normal", seed=seed)


def test_fit_result_and_history(blobs):
    result = fit(net(), blobs, steps=30, eval_every=10, lr=0.1, progress=False)
    assert isinstance(result, FitResult)
    assert result.status == "ok" and result.diverged_step is None and result.steps_run == 30
    h = result.history
    assert list(h.columns) == ["step", "split", "metric", "value"]
    per_step = h[h.metric.isin(["loss", "grad_norm", "grad_abs_sum"])]
    assert (per_step.split == "train").all()
    assert per_step.groupby("metric").step.apply(list).to_dict() == {m: list(range(1, 31)) for m in
                                                                        ["grad_abs_sum", "grad_norm", "loss"]}
    evals = h[h.metric.isin(["eval_loss", "accuracy"])]
    assert sorted(evals.step.unique()) == [0, 10, 20, 30]
    assert set(evals.split) == {"train", "test"}
    assert result.final() == float(evals[(evals.metric == "accuracy") & (evals.split == "test")].value.iloc[-1])
    assert result.final() > 0.85
    assert math.isnan(result.final("nonexistent"))
    curve = result.curve("loss")
    assert curve.step.tolist() == list(range(1, 31)) and curve.index.tolist() == list(range(30))
    assert curve.value.iloc[-5:].mean() < curve.value.iloc[:5].mean()
    # eval at the end even when steps is not a multiple of eval_every
    assert sorted(fit(net(), blobs, steps=7, eval_every=5, progress=False).curve("accuracy", "test").step) == [0, 5, 7]


def test_fit_is_deterministic(blobs):
    a = fit(net(), blobs, steps=40, batch_size=16, seed=3, progress=False)
    b = fit(net(), blobs, steps=40, batch_size=16, seed=3, progress=False)
    pd.testing.assert_frame_equal(a.history, b.history)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    c = fit(net(), blobs, steps=40, batch_size=16, seed=4, progress=False)
    assert not np.allclose(a.curve("loss").value, c.curve("loss").value)  # another shuffle


def test_fit_seeds_randomness_inside_the_model(blobs):
    runs = [fit(net(activation="rrelu"), blobs, steps=10, seed=s, batch_size=None, progress=False) for s in (5, 5, 6)]
    pd.testing.assert_frame_equal(runs[0].history, runs[1].history)
    assert not runs[0].history.equals(runs[2].history)  # RReLU's random slopes follow the seed


def test_fit_diverges_without_exception(blobs):
    result = fit(net(depth=3), blobs, steps=100, lr=1e3, progress=False)
    assert result.status == "diverged"
    assert isinstance(result.diverged_step, int) and 1 <= result.diverged_step < 100
    assert result.steps_run == result.diverged_step
    loss = result.curve("loss")
    assert loss.step.iloc[-1] == result.diverged_step and not math.isfinite(loss.value.iloc[-1])
    assert np.isfinite(loss.value.iloc[:-1]).all()
    assert result.history.step.max() == result.diverged_step


def _manual_sgd_step(model, x, y, lr, clip_norm=None, clip_value=None):
    model = copy.deepcopy(model)
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    total = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    if clip_value is not None:
        grads = [g.clamp(-clip_value, clip_value) for g in grads]
    if clip_norm is not None:
        norm = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
        grads = [g * min(1.0, clip_norm / (norm + 1e-6)) for g in grads]
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            p.sub_(lr * g)
    return model, total


@pytest.mark.parametrize("clip", [{"clip_norm": 0.05}, {"clip_value": 0.002}, {"clip_norm": 0.01, "clip_value": 0.01}])
def test_clipping_matches_manual(blobs, clip):
    start = net()
    before = [p.detach().clone() for p in start.parameters()]
    lr = 0.5
    expected, total = _manual_sgd_step(start, blobs.x_train, blobs.y_train, lr, **clip)
    result = fit(copy.deepcopy(start), blobs, steps=1, batch_size=None, lr=lr, progress=False, **clip)
    for p, q in zip(result.model.parameters(), expected.parameters()):
        torch.testing.assert_close(p, q)
    # the history keeps the norm before clipping, and the update is bounded by the clip
    assert result.curve("grad_norm").value.iloc[0] == pytest.approx(total, rel=1e-5)
    deltas = [p.detach() - b for p, b in zip(result.model.parameters(), before)]
    if "clip_norm" in clip:
        assert total > clip["clip_norm"]
        norm = float(torch.sqrt(sum(d.pow(2).sum() for d in deltas)))
        assert norm <= lr * clip["clip_norm"] * (1 + 1e-4)
        if "clip_value" not in clip:
            assert norm == pytest.approx(lr * clip["clip_norm"], rel=1e-3)
    if "clip_value" in clip:
        assert max(float(d.abs().max()) for d in deltas) <= lr * clip["clip_value"] + 1e-6  # float32 rounding


@pytest.mark.parametrize(
    "kw, reference",
    [
        ({"optimizer": "sgd", "momentum": 0.9, "lr": 0.05},
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
        ({"optimizer": "sgd", "weight_decay": 0.01, "lr": 0.1},
         lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.01)),
        ({"optimizer": "adam", "lr": 0.01}, lambda ps: torch.optim.Adam(ps, lr=0.01)),
        ({"optimizer": "adam", "lr": 0.01, "amsgrad": True, "weight_decay": 0.001},
         lambda ps: torch.optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.001)),
    ],
)
def test_optimizers_match_torch(blobs, kw, reference):
    start = net()
    manual = copy.deepcopy(start)
    opt = reference(list(manual.parameters()))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(manual(blobs.x_train), blobs.y_train).backward()
        opt.step()
    result = fit(start, blobs, steps=5, batch_size=None, progress=False, **kw)
    for p, q in zip(result.model.parameters(), manual.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("kw", [{"optimizer": "sgd", "momentum": 0.9, "lr": 0.05}, {"optimizer": "adam", "lr": 0.01}])
def test_optimizers_train(blobs, kw):
    result = fit(net(), blobs, steps=150, batch_size=32, progress=False, **kw)
    assert result.status == "ok" and result.final() > 0.9
    loss = result.curve("loss").value
    assert loss.iloc[-10:].mean() < 0.5 * loss.iloc[:10].mean()


def test_full_batch_and_pairs(blobs_xy):
    x, y = blobs_xy
    full = fit(net(), (x, y), steps=5, batch_size=None, progress=False)
    big = fit(net(), [x, y], steps=5, batch_size=10_000, progress=False)
    pd.testing.assert_frame_equal(full.history, big.history)
    assert set(full.history.split) == {"train"}  # an (x, y) pair has no test split
    assert math.isnan(full.final("accuracy", "test"))
    # grad_norm and grad_abs_sum of step 1 are those of the full batch
    model = net()
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    h = full.history[full.history.step == 1].set_index("metric").value
    assert h["loss"] == pytest.approx(float(loss.detach()), rel=1e-6)
    assert h["grad_norm"] == pytest.approx(float(torch.sqrt(sum(g.pow(2).sum() for g in grads))), rel=1e-5)
    assert h["grad_abs_sum"] == pytest.approx(float(sum(g.abs().sum() for g in grads)), rel=1e-5)


def test_mse_loss():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    model = mlp(3, 1, depth=1, width=16, activation="tanh")
    result = fit(model, (x, y), steps=100, lr=0.05, loss="mse", batch_size=None, progress=False)
    eval_loss = result.curve("eval_loss")
    assert eval_loss.value.iloc[-1] < 0.2 * eval_loss.value.iloc[0]
    assert math.isnan(result.final("accuracy", "train"))


def test_fit_with_monitor(blobs):
    result = fit(net(), blobs, steps=100, monitor=True, progress=False)
    mon = result.monitor
    assert isinstance(mon, Monitor) and not mon.attached
    stats = mon.to_frame()
    assert sorted(stats.step.unique()) == [1, 50, 100]  # the default samples every 50; evaluations are not steps
    assert {"act_mean", "grad_norm", "update_ratio"} <= set(stats.quantity)
    # the monitor's per-layer grad norms at step 1 add up to fit's total (weights only, no biases)
    layer_norms = stats[(stats.step == 1) & (stats.quantity == "grad_norm")].value
    assert math.sqrt((layer_norms**2).sum()) <= result.curve("grad_norm").value.iloc[0] + 1e-6
    from_dict = fit(net(), blobs, steps=25, monitor={"every": 5}, progress=False)
    assert sorted(from_dict.monitor.to_frame().step.unique()) == [1, 5, 10, 15, 20, 25]
    model = net()
    own = Monitor(model, every=12)
    assert fit(model, blobs, steps=25, monitor=own, progress=False).monitor is own
    assert sorted(own.to_frame().step.unique()) == [1, 12, 24]
    # the monitor does not change the training
    pd.testing.assert_frame_equal(result.history, fit(net(), blobs, steps=100, progress=False).history)


def test_progress_bar(blobs, capsys, monkeypatch):
    fit(net(), blobs, steps=3, progress=True)
    assert "fit" in capsys.readouterr().err
    fit(net(), blobs, steps=3, progress=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TRAINABILITY_BUILD", "1")  # building the book: no bar by default
    fit(net(), blobs, steps=3)
    assert capsys.readouterr().err == ""


def test_evaluate(blobs):
    model = net()
    model.train()
    got = evaluate(model, blobs.x_test, blobs.y_test)
    assert model.training  # mode restored
    with torch.no_grad():
        out = model.eval()(blobs.x_test)
    assert got["eval_loss"] == pytest.approx(float(nn.functional.cross_entropy(out, blobs.y_test)), rel=1e-6)
    assert got["accuracy"] == pytest.approx(float((out.argmax(1) == blobs.y_test).float().mean()))
    bn = mlp(2, 4, depth=1, width=8, norm="batch")
    before = bn.hidden1.norm.running_mean.clone()
    evaluate(bn, blobs.x_test * 10 + 3, blobs.y_test)
    assert torch.equal(bn.hidden1.norm.running_mean, before)  # evaluated in eval mode


def test_seed_everything():
    g = seed_everything(11)
    a = (random.random(), np.random.rand(), torch.rand(2), torch.rand(2, generator=g))  # noqa: NPY002
    g = seed_everything(11)
    b = (random.random(), np.random.rand(), torch.rand(2), torch.rand(2, generator=g))  # noqa: NPY002
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    assert isinstance(g, torch.Generator) and g.initial_seed() == 11
    seed_everything(2**40)  # larger than NumPy's 32-bit seeds: reduced, not rejected
