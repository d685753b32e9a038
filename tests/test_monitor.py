"""helpers.monitor: hook statistics against a forward pass computed by hand, sampling, bounded memory."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import monitor
from helpers.models import mlp, small_cnn
from helpers.monitor import Monitor, preserved_state, snapshot

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")


def reference_stats(out: torch.Tensor, kind: str | None = None) -> dict[str, float]:
    """The activation quantities computed directly with NumPy (float64), independently of helpers."""
    a = out.detach().double().numpy()
    zero = a == 0
    unit_axes = (0, *range(2, a.ndim))  # a unit is a feature or a channel
    if kind == "tanh":
        sat = float((np.abs(a) > 0.97).mean())
    elif kind == "sigmoid":
        sat = float(((a < 0.03) | (a > 0.97)).mean())
    else:
        sat = math.nan
    return {
        "act_mean": float(a.mean()),
        "act_std": float(a.std(ddof=1)),
        "frac_zero": float(zero.mean()),
        "frac_saturated": sat,
        "frac_dead": float(zero.all(axis=unit_axes).mean()),
    }


def values(stats: pd.DataFrame, layer: str, step: int | None = None) -> dict[str, float]:
    rows = stats[stats.layer == layer]
    if step is not None:
        rows = rows[rows.step == step]
    assert not rows.quantity.duplicated().any(), f"{layer} recorded twice"
    return dict(zip(rows.quantity, rows.value))


def assert_stats_close(got: dict[str, float], expected: dict[str, float], scale: float = 1.0) -> None:
    """Compare statistics; float32 rounding grows with the values' magnitude ``scale``."""
    for key, want in expected.items():
        if math.isnan(want):
            assert math.isnan(got[key]), (key, got[key])
        else:
            assert got[key] == pytest.approx(want, rel=1e-4, abs=1e-6 * max(1.0, scale)), key


# -- snapshot against a plain forward/backward pass ------------------------------------------------


def test_snapshot_matches_forward_by_hand():
    torch.manual_seed(0)
    net = mlp(10, 3, depth=3, width=16, activation="tanh")
    with torch.no_grad():
        net.hidden1.linear.weight.mul_(4)  # some saturation
    x, y = torch.randn(64, 10) * 2, torch.randint(0, 3, (64,))
    stats, hists = snapshot(net, x, y)
    assert list(stats.columns) == ["step", "layer", "index", "kind", "quantity", "value"]
    assert set(stats.step) == {1}
    # forward by hand
    h = x
    for i, block in enumerate(net.hidden_blocks(), start=1):
        h = torch.tanh(h @ block.linear.weight.detach().T + block.linear.bias.detach())
        got = values(stats, f"hidden{i}.act")
        assert_stats_close(got, reference_stats(h, "tanh"))
        assert stats[stats.layer == f"hidden{i}.act"]["index"].unique().tolist() == [i]
        assert (stats[stats.layer == f"hidden{i}.act"].kind == "activation").all()
        counts = hists[hists.layer == f"hidden{i}.act"]["count"].to_numpy()
        ref, _ = np.histogram(h.clamp(-1, 1).numpy(), bins=40, range=(-1, 1))
        assert counts.sum() == h.numel() and np.abs(counts - ref).sum() <= 2  # float32 vs float64 bin edges
    assert values(stats, "hidden1.act")["frac_saturated"] > 0.05
    # backward by hand, with autograd
    loss = nn.functional.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, [b.linear.weight for b in net.hidden_blocks()] + [net.output.weight])
    names = ["hidden1.linear", "hidden2.linear", "hidden3.linear", "output"]
    weights = [b.linear.weight for b in net.hidden_blocks()] + [net.output.weight]
    for index, (name, g, w) in enumerate(zip(names, grads, weights), start=1):
        got = values(stats, name)
        assert got["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-5)
        assert got["grad_abs_sum"] == pytest.approx(float(g.abs().sum()), rel=1e-5)
        assert got["weight_norm"] == pytest.approx(float(w.detach().norm()), rel=1e-6)
        assert "update_ratio" not in got  # a snapshot takes no optimizer step
        assert stats[stats.layer == name]["index"].unique().tolist() == [index]


def test_snapshot_counts_dead_units():
    torch.manual_seed(1)
    net = mlp(8, 2, depth=2, width=10, activation="relu")
    with torch.no_grad():
        net.hidden1.linear.bias[:3] = -100.0  # three units never fire
    x = torch.randn(50, 8)
    stats, _ = snapshot(net, x)
    h1 = torch.relu(net.hidden1.linear(x))
    got = values(stats, "hidden1.act")
    assert got["frac_dead"] == pytest.approx(0.3)
    assert_stats_close(got, reference_stats(h1))
    assert set(stats.kind) == {"activation"}  # no targets: forward only, no gradient rows


def test_snapshot_leaves_model_unchanged():
    torch.manual_seed(2)
    net = mlp(6, 3, depth=2, width=8, norm="batch")
    net.hidden2.eval()  # a mixed mode, to be restored as it was
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    nn.functional.cross_entropy(net(x), y).backward()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    modes = {n: m.training for n, m in net.named_modules()}
    stats, _ = snapshot(net, x * 5 + 1, y, loss_fn=nn.functional.cross_entropy)
    assert len(stats) > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BN running stats too
    assert all(torch.equal(grads[n], p.grad) for n, p in net.named_parameters())
    assert {n: m.training for n, m in net.named_modules()} == modes
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_snapshot_custom_loss_and_hist_range():
    net = mlp(4, 2, depth=1, width=6, activation="relu")
    x, target = torch.randn(20, 4), torch.randn(20, 2)
    stats, hists = snapshot(net, x, target, loss_fn=nn.functional.mse_loss, bins=8, hist_range=(0.0, 2.0))
    out = net(x)
    (g,) = torch.autograd.grad(nn.functional.mse_loss(out, target), [net.output.weight])
    assert values(stats, "output")["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-5)
    h = hists[hists.layer == "hidden1.act"]
    assert len(h) == 8 and h.bin_left.iloc[0] == 0.0 and h.bin_right.iloc[-1] == 2.0
    assert h.density.sum() == pytest.approx(1.0)


def test_preserved_state():
    net = mlp(3, 2, depth=1, width=4)
    w = net.output.weight.detach().clone()
    net.train()
    with preserved_state(net) as same:
        assert same is net
        with torch.no_grad():
            net.output.weight.add_(1.0)
        net.output.weight.grad = torch.ones_like(w)
        net.eval()
    assert torch.equal(net.output.weight, w) and net.output.weight.grad is None and net.training


# -- Monitor in a training loop ------------------------------------------------------------------


def test_monitor_sampling_updates_and_gradients():
    torch.manual_seed(3)
    net = mlp(5, 3, depth=2, width=7, activation="tanh")
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    weights = {"hidden1.linear": net.hidden1.linear.weight, "output": net.output.weight}
    expected_ratio, expected_grad = {}, {}
    with Monitor(net, every=5) as mon:
        assert mon.attached
        for step in range(1, 11):
            before = {k: w.detach().clone() for k, w in weights.items()}
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            expected_grad[step] = {k: float(w.grad.norm()) for k, w in weights.items()}
            opt.step()
            expected_ratio[step] = {k: float((w.detach() - before[k]).norm() / before[k].norm())
                                    for k, w in weights.items()}
            with torch.no_grad():
                net(x)  # an evaluation pass: not a step, not recorded
    assert not mon.attached and mon.current_step == 10
    stats = mon.to_frame()
    assert sorted(stats.step.unique()) == [1, 5, 10]
    for step in (1, 5, 10):
        for name in weights:
            got = values(stats, name, step)
            assert got["grad_norm"] == pytest.approx(expected_grad[step][name], rel=1e-5)
            # the last sampled step's ratio is recorded on leaving the block
            assert got["update_ratio"] == pytest.approx(expected_ratio[step][name], rel=1e-4)
    n_act = stats[(stats.kind == "activation") & (stats.step == 5)]
    assert sorted(n_act.layer.unique()) == ["hidden1.act", "hidden2.act"] and len(n_act) == 2 * 5
    hists = mon.histograms()
    assert list(hists.columns) == ["step", "layer", "index", "bin_left", "bin_right", "count", "density"]
    assert sorted(hists.step.unique()) == [1, 5, 10]
    assert (hists.groupby(["step", "layer"])["count"].sum() == 40 * 7).all()


def test_monitor_options():
    net = mlp(4, 2, depth=2, width=5)
    x = torch.randn(8, 4)
    with Monitor(net, every=1, activations=False, updates=False) as mon:
        net(x).sum().backward()
    stats = mon.to_frame()
    assert set(stats.kind) == {"weight"} and "update_ratio" not in set(stats.quantity)
    assert mon.histograms().empty and list(mon.histograms().columns)[:3] == ["step", "layer", "index"]
    with Monitor(net, every=1, gradients=False, bins=5, hist_range=(-1.0, 1.0)) as mon2:
        net(x).sum().backward()
    assert set(mon2.to_frame().quantity) == {*monitor.ACTIVATION_QUANTITIES, "update_ratio"}
    h = mon2.histograms()
    assert len(h[h.layer == "hidden1.act"]) == 5 and h.bin_left.min() == -1.0
    assert h.groupby("layer")["count"].sum().tolist() == [8 * 5, 8 * 5]  # outside values go to edge bins


def test_monitor_manual_steps():
    net = mlp(3, 2, depth=1, width=4)
    x = torch.randn(6, 3)
    with Monitor(net, every=2, auto_step=False) as mon:
        assert mon.current_step == 1 and mon.sampling()
        net(x).sum().backward()
        mon.step()
        assert mon.current_step == 2
        with torch.no_grad():
            net(x)  # counted by hand, so recorded
        mon.step()
        net(x)
    assert mon.current_step == 3
    assert sorted(mon.to_frame().step.unique()) == [1, 2]


def test_monitor_cannot_be_entered_twice_and_cleans_up_on_error():
    net = mlp(3, 2, depth=1, width=4)
    mon = Monitor(net)
    with mon, pytest.raises(RuntimeError, match="already attached"):
        mon.__enter__()
    assert not mon.attached
    with pytest.raises(ZeroDivisionError), Monitor(net):
        raise ZeroDivisionError("inside the block")
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_hooks_removed_on_exit():
    net = mlp(4, 2, depth=3, width=6)
    x = torch.randn(8, 4)
    with Monitor(net, every=1) as mon:
        net(x).sum().backward()
        assert any(m._forward_hooks for m in net.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert all(not p._backward_hooks for p in net.parameters())
    n, step, frame = mon.n_records(), mon.current_step, mon.to_frame()
    net(x).sum().backward()  # after exit: nothing recorded
    assert mon.n_records() == n and mon.current_step == step
    pd.testing.assert_frame_equal(mon.to_frame(), frame)


def test_memory_is_bounded():
    torch.manual_seed(4)
    net = mlp(4, 2, depth=2, width=8)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    per_step = 2 * len(monitor.ACTIVATION_QUANTITIES) + 3 * len(monitor.WEIGHT_QUANTITIES) + 2  # rows + hists
    sizes = []
    with Monitor(net, every=1, max_samples=50) as mon:
        for step in range(1, 3001):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            if step % 500 == 0:
                sizes.append((len(mon._rows), mon.n_records()))
    assert len(sizes) == 6
    for n_steps, n_records in sizes:  # the same bound after 500 steps as after 3,000
        assert 25 <= n_steps <= 51 and n_records <= 51 * per_step
    stats = mon.to_frame()
    steps = sorted(stats.step.unique())
    assert len(steps) <= 51 and steps[0] == 1 and steps[-1] > 2500  # spread over the whole run
    assert len(stats) + len(mon.histograms()) // 40 == mon.n_records()
    assert mon.every >= 3000 // 50


# -- any module: a custom residual tree and a CNN -------------------------------------------------


class ResBlock(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.GELU()

    def forward(self, x):
        return x + self.act(self.fc(x))


class ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(6, 12)
        self.relu = nn.ReLU()
        self.blocks = nn.ModuleList([ResBlock(12), ResBlock(12)])
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        h = self.relu(self.stem(x))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def test_monitor_on_custom_residual_module():
    torch.manual_seed(5)
    net = ResNet()
    x, y = torch.randn(30, 6), torch.randint(0, 3, (30,))
    stats, _ = snapshot(net, x, y)
    assert sorted(stats[stats.kind == "activation"].layer.unique()) == ["blocks.0.act", "blocks.1.act", "relu"]
    assert sorted(stats[stats.kind == "weight"].layer.unique()) == ["blocks.0.fc", "blocks.1.fc", "head", "stem"]
    with torch.no_grad():
        h0 = torch.relu(net.stem(x))
        a0 = nn.functional.gelu(net.blocks[0].fc(h0))  # the activation, before the skip is added
        a1 = nn.functional.gelu(net.blocks[1].fc(h0 + a0))
    assert_stats_close(values(stats, "relu"), reference_stats(h0))
    assert_stats_close(values(stats, "blocks.0.act"), reference_stats(a0))
    assert_stats_close(values(stats, "blocks.1.act"), reference_stats(a1))
    (g,) = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), [net.blocks[0].fc.weight])
    assert values(stats, "blocks.0.fc")["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-5)
    with Monitor(net, every=2) as mon:
        for _ in range(4):
            net(x).sum().backward()
    assert sorted(mon.to_frame().step.unique()) == [1, 2, 4]


def test_monitor_on_cnn():
    torch.manual_seed(6)
    net = small_cnn(channels=(4, 8))
    with torch.no_grad():
        net.conv1.conv.bias[0] = -100.0  # channel 0 of the first stage is dead
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    stats, hists = snapshot(net, x, y)
    with torch.no_grad():
        a1 = torch.relu(net.conv1.conv(x))
        a2 = torch.relu(net.conv2.conv(nn.functional.max_pool2d(a1, 2)))
    got1 = values(stats, "conv1.act")
    assert got1["frac_dead"] >= 0.25
    assert_stats_close(got1, reference_stats(a1))
    assert_stats_close(values(stats, "conv2.act"), reference_stats(a2))
    weights = [net.conv1.conv.weight, net.conv2.conv.weight, net.output.weight]
    grads = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), weights)
    for name, g in zip(["conv1.conv", "conv2.conv", "output"], grads):
        assert values(stats, name)["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-5)
    assert hists[hists.layer == "conv1.act"]["count"].sum() == a1.numel()
