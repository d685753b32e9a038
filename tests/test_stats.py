"""helpers.stats: each statistic against NumPy on hand-made and random batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from helpers import monitor, stats
from helpers.stats import activation_stats, saturated
from tests.test_monitor import assert_stats_close, reference_stats

# -- activation_stats and saturated ---------------------------------------------------------


def test_activation_stats_by_hand():
    out = torch.tensor([[0.0, 1.0, 0.0], [0.0, 3.0, 2.0]])
    s = activation_stats(nn.ReLU(), out)
    assert s["frac_zero"] == pytest.approx(3 / 6) and s["frac_dead"] == pytest.approx(1 / 3)
    assert s["act_mean"] == pytest.approx(1.0) and s["act_std"] == pytest.approx(float(out.std()))
    assert math.isnan(s["frac_saturated"])
    t = activation_stats(nn.Tanh(), torch.tensor([[0.99, -0.98], [0.5, 0.0]]))
    assert t["frac_saturated"] == pytest.approx(0.5) and t["frac_dead"] == 0.0
    sig = activation_stats(nn.Sigmoid(), torch.tensor([[0.01, 0.5, 0.98, 0.03]]))
    assert sig["frac_saturated"] == pytest.approx(0.5)  # 0.03 itself is not saturated
    one_d = activation_stats(nn.ReLU(), torch.tensor([0.0, 2.0]))
    assert math.isnan(one_d["frac_dead"])
    assert activation_stats(nn.ReLU(), torch.tensor([[5.0]]))["act_std"] == 0.0


def test_activation_stats_conv_channels():
    out = torch.rand(4, 3, 5, 5) + 0.1
    out[:, 1] = 0.0  # channel 1 dead
    out[0, 2] = 0.0  # channel 2 zero for one example only: not dead
    s = activation_stats(nn.ReLU(), out)
    assert s["frac_dead"] == pytest.approx(1 / 3)
    assert_stats_close(s, reference_stats(out))


def test_saturated():
    x = torch.tensor([-0.98, -0.5, 0.97, 0.971])
    assert saturated(nn.Tanh(), x).tolist() == [True, False, False, True]
    assert saturated(nn.Sigmoid(), torch.tensor([0.02, 0.5, 0.98])).tolist() == [True, False, True]
    assert saturated(nn.ReLU(), x) is None
    assert monitor.default_hist_range(nn.Tanh()) == (-1.0, 1.0)
    assert monitor.default_hist_range(nn.Sigmoid()) == (0.0, 1.0)
    assert monitor.default_hist_range(nn.GELU()) == (-4.0, 4.0)


ACTS = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "gelu": nn.GELU(), "elu": nn.ELU()}


@settings(max_examples=40, deadline=None)
@given(
    pre=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=6),
                   elements=st.floats(-30, 30, width=32)),
    kind=st.sampled_from(sorted(ACTS)),
    shift=st.sampled_from([0.0, -10.0]),
)
def test_activation_stats_invariants(pre, kind, shift):
    module = ACTS[kind]
    out = module(torch.from_numpy(pre) + shift)
    s = activation_stats(module, out)
    assert 0.0 <= s["frac_dead"] <= s["frac_zero"] <= 1.0
    if s["frac_dead"] == 1.0:
        assert s["frac_zero"] == 1.0
    assert s["act_std"] >= 0.0
    assert float(out.min()) - 1e-5 <= s["act_mean"] <= float(out.max()) + 1e-5
    assert math.isnan(s["frac_saturated"]) == (kind not in ("tanh", "sigmoid"))
    if kind in ("tanh", "sigmoid"):
        assert 0.0 <= s["frac_saturated"] <= 1.0
    if out.numel() > 1:
        assert_stats_close(s, reference_stats(out, kind), scale=float(out.abs().max()))


@settings(max_examples=40, deadline=None)
@given(out=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=6),
                      elements=st.sampled_from([0.0, 0.0, 1.0, -2.0, 0.5, 3.25])))
def test_unit_statistics_against_numpy(out):
    a = out.astype(np.float64)
    units = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)
    t = torch.from_numpy(out)
    assert stats.dead_units(t).tolist() == (units == 0).all(axis=1).tolist()
    assert stats.frozen_units(t, tol=0.1).tolist() == (units.max(axis=1) - units.min(axis=1) < 0.1).tolist()
    live = units[(units != 0).any(axis=1)]
    want = math.sqrt(live.var(axis=1).mean()) if len(live) else float("nan")
    got = stats.example_std(t)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_rms_and_update_ratio():
    x = torch.tensor([1.0, -2.0, 2.0])
    assert stats.rms(x) == pytest.approx(math.sqrt(3.0))
    w = torch.tensor([3.0, 4.0])
    assert stats.update_ratio(w, w + torch.tensor([0.3, 0.4])) == pytest.approx(0.1)


def test_per_unit_needs_two_axes():
    with pytest.raises(ValueError, match=r"out must have a batch axis and a unit axis, got shape \(3,\)"):
        stats.per_unit(torch.zeros(3))
