"""helpers.normalization_checks: each check against a direct computation or a known answer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import normalization_checks as nc


def reference_batch_norm(x, gamma, beta, running_mean, running_var, *, training, eps=1e-5):
    """Per-channel BatchNorm written out with a loop (no running-statistics update needed here)."""
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        v = x[:, c]
        mean, var = (v.mean(), v.var(unbiased=False)) if training else (running_mean[c], running_var[c])
        out[:, c] = gamma[c] * (v - mean) / torch.sqrt(var + eps) + beta[c]
    return out


def test_convention_gaps_match_a_direct_rebuild():
    gaps = nc.convention_gaps(seed=1)
    torch.manual_seed(1)
    x = torch.randn(32, 6) * 3
    # biased vs unbiased running variance differ by 0.1 · (unbiased − biased) batch variance
    assert gaps.biased_var == pytest.approx((0.1 * (x.var(0) - x.var(0, unbiased=False))).abs().max().item(),
                                            rel=1e-4)
    # Keras's reading puts 0.9 of the batch mean where PyTorch puts 0.1: off by 0.8 · mean
    assert gaps.keras_mean == pytest.approx((0.8 * x.mean(0)).abs().max().item(), rel=1e-4)
    assert gaps.unbiased_var < 1e-5


def test_batch_of_one_is_refused_and_features_are_checked():
    assert "more than 1 value per channel" in nc.batch_of_one_error(4)
    with pytest.raises(ValueError):
        nc.batch_of_one_error(0)


def test_emulation_gaps_are_float_rounding_and_need_two_per_worker():
    out_gap, var_gap = nc.emulation_gaps(channels=3, per_worker=16)
    assert out_gap < 1e-5 and var_gap < 1e-5
    with pytest.raises(ValueError):
        nc.emulation_gaps(per_worker=1)


def test_batch_mate_probabilities_move_only_in_training_mode_and_leave_the_model_alone():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    before = net[1].running_mean.clone()
    p = nc.batch_mate_probabilities(net, x, y, index=0, draws=6, mates=3)
    assert len(p["training"]) == len(p["evaluation"]) == 6
    assert max(p["training"]) - min(p["training"]) > 1e-3
    assert max(p["evaluation"]) - min(p["evaluation"]) < 1e-6
    assert torch.equal(net[1].running_mean, before)
    no_bn = nn.Sequential(nn.Linear(5, 3))
    q = nc.batch_mate_probabilities(no_bn, x, y, draws=3)
    direct = no_bn(x[:1]).softmax(1)[0, y[0]].item()
    assert q["training"] == pytest.approx([direct] * 3) and q["evaluation"] == pytest.approx([direct] * 3)


def test_batch_mate_changes_against_a_direct_replacement():
    x = torch.randn(4, 3)
    centre = nn.Module()
    centre.forward = lambda t: t - t.mean(0)
    torch.manual_seed(5)
    moved = nc.batch_mate_changes({"identity": nn.Identity(), "centre": centre}, x)
    torch.manual_seed(5)
    other = x.clone()
    other[1:] = 2 * torch.randn(3, 3) - 1
    assert moved["identity"] == 0.0
    assert moved["centre"] == pytest.approx(((x - x.mean(0))[0] - (other - other.mean(0))[0]).abs().max().item())


def test_batch_of_two_normalizes_to_plus_minus_one_and_an_identity_does_not():
    two = nc.batch_of_two(reference_batch_norm, features=8)
    assert two.off_one_eps0 < 1e-5 and two.sign_is_order
    assert two.off_formula(eps=1e-5) < 1e-5
    assert two.summary().splitlines()[0] == "batch of two, eps=0, first example, first 6 features:"
    identity = nc.batch_of_two(lambda x, *args, **kw: x, features=8)
    assert identity.off_one_eps0 > 0.05


def test_keras_momentum_table_rebuilt_by_hand():
    table = nc.keras_momentum_table(0.9, batches=3, seed=2)
    torch.manual_seed(2)
    expected = torch.zeros(3)
    for _ in range(3):
        expected = 0.9 * expected + 0.1 * (torch.randn(16, 3) + 2).mean(0)
    assert torch.allclose(torch.tensor(table["Keras moving_mean"].values), expected, atol=1e-6)
    assert table.difference.max() < 1e-6
    with pytest.raises(ValueError):
        nc.keras_momentum_table(1.5)


def test_eps_zero_change_is_rounding_for_batchnorm_and_large_for_a_plain_scale():
    x = torch.randn(64, 20)
    assert nc.eps_zero_change(reference_batch_norm, x) < 1e-5
    assert nc.eps_zero_change(lambda h, *args, **kw: h, x) > 1e-2
