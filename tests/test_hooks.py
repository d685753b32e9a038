"""helpers.hooks and helpers.layers: hooks never outlive their block; the one table of layer types."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import hooks, layers
from helpers.models import mlp, small_cnn
from helpers.monitor import Monitor


def n_hooks(model: nn.Module) -> int:
    modules = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                  for m in model.modules())
    return modules + sum(len(p._backward_hooks or {}) for p in model.parameters())


def test_hooks_removed_on_exit_and_on_error():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    calls = []
    with hooks.Hooks() as h:
        h.forward(net[0], lambda m, i, o: calls.append("fwd"))
        h.forward_pre(net, lambda m, i: calls.append("pre"))
        h.tensor(net[0].weight, lambda g: calls.append("grad"))
        net(torch.randn(2, 3)).sum().backward()
        assert len(h) == 3
    assert calls == ["pre", "fwd", "grad"] and n_hooks(net) == 0
    with pytest.raises(ZeroDivisionError), hooks.Hooks() as h:
        h.forward(net[1], lambda m, i, o: None)
        raise ZeroDivisionError
    assert n_hooks(net) == 0
    h.remove()  # idempotent


def test_capture_output_and_input():
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    x = torch.randn(5, 3)
    with hooks.capture({"lin": net[0], "act": net[1]}) as out, hooks.capture({"act": net[1]}, what="input") as inp:
        y = net(x)
    assert torch.equal(out["act"], y.detach()) and torch.equal(inp["act"], net[0](x).detach())
    assert not out["lin"].requires_grad and n_hooks(net) == 0
    with hooks.capture({"lin": net[0]}, detach=False) as kept:
        net(x)
    assert kept["lin"].requires_grad  # the graph is kept, to read gradients through it
    with pytest.raises(ValueError, match=r"what='grad' is not valid; choose one of: 'output', 'input'"):
        hooks.capture({}, what="grad")


def test_layer_tables():
    net = small_cnn(1, 10, norm="batch")
    assert [n for n, _ in layers.weight_layers(net)] == [n for n, m in net.named_modules()
                                                          if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(isinstance(m, layers.ACTIVATION_TYPES) for _, m in layers.activation_layers(net))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got list"):
        layers.weight_layers([1])


def test_monitor_on_a_frozen_layer_leaves_no_hook():
    net = mlp(4, 2, depth=2, width=5)
    net.hidden1.linear.weight.requires_grad_(False)
    with Monitor(net, every=1) as mon:
        net(torch.randn(8, 4)).sum().backward()
    assert n_hooks(net) == 0
    seen = set(mon.to_frame().query("quantity == 'grad_norm'").layer)
    assert "hidden1.linear" not in seen and "hidden2.linear" in seen
