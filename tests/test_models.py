"""helpers.models: activations by name, the MLP builder and the small CNN."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import models
from helpers.models import Block, activation, mlp, small_cnn

EXPECTED_TYPES = {
    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "prelu": nn.PReLU,
    "rrelu": nn.RReLU, "elu": nn.ELU, "gelu": nn.GELU, "identity": nn.Identity,
}


@pytest.mark.parametrize("name", models.ACTIVATIONS)
def test_activation_by_name(name):
    module = activation(name)
    assert type(module) is EXPECTED_TYPES[name]
    assert activation(name) is not module  # a fresh module each call
    x = torch.linspace(-3, 3, 13)
    reference = {
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
        "leaky_relu": lambda t: nn.functional.leaky_relu(t, 0.01), "prelu": lambda t: torch.where(t > 0, t, 0.01 * t),
        "elu": nn.functional.elu, "gelu": nn.functional.gelu, "identity": lambda t: t,
        "rrelu": lambda t: nn.functional.rrelu(t, training=False),
    }[name]
    torch.testing.assert_close(module.eval()(x), reference(x))


def test_activation_slopes():
    assert activation("leaky_relu", negative_slope=0.3).negative_slope == 0.3
    assert float(activation("prelu", negative_slope=0.2).weight.detach()) == pytest.approx(0.2)
    assert float(activation("prelu", negative_slope=0.0).weight.detach()) == pytest.approx(0.25)  # PyTorch's default
    leaky = activation("leaky_relu", negative_slope=0.0)
    assert float(leaky(torch.tensor(-2.0))) == 0.0


def test_mlp_structure():
    net = mlp(64, 10, depth=3, width=[32, 16, 8], activation="tanh")
    assert isinstance(net, models.MLP) and isinstance(net, nn.Sequential)
    assert [n for n, _ in net.named_children()] == ["flatten", "hidden1", "hidden2", "hidden3", "output"]
    blocks = net.hidden_blocks()
    assert blocks == [net.hidden1, net.hidden2, net.hidden3] and all(isinstance(b, Block) for b in blocks)
    shapes = [tuple(b.linear.weight.shape) for b in blocks] + [tuple(net.output.weight.shape)]
    assert shapes == [(32, 64), (16, 32), (8, 16), (10, 8)]
    assert all(isinstance(b.act, nn.Tanh) and not hasattr(b, "norm") for b in blocks)
    assert net(torch.zeros(5, 1, 8, 8)).shape == (5, 10)  # the flatten layer takes images


def test_mlp_forward_is_linear_then_activation():
    torch.manual_seed(0)
    net = mlp(6, 3, depth=2, width=5, activation="sigmoid")
    x = torch.randn(4, 6)
    h = x
    for block in net.hidden_blocks():
        h = torch.sigmoid(h @ block.linear.weight.T + block.linear.bias)
    expected = h @ net.output.weight.T + net.output.bias
    torch.testing.assert_close(net(x), expected)


def test_mlp_options():
    no_bias = mlp(4, 2, depth=2, bias=False, flatten=False)
    assert "flatten" not in dict(no_bias.named_children())
    assert all(m.bias is None for m in no_bias.modules() if isinstance(m, nn.Linear))
    leaky = mlp(4, 2, depth=2, activation="leaky_relu", negative_slope=0.2)
    assert all(b.act.negative_slope == 0.2 for b in leaky.hidden_blocks())
    batch = mlp(4, 2, depth=2, width=8, norm="batch")
    layer = mlp(4, 2, depth=2, width=8, norm="layer")
    assert all(isinstance(b.norm, nn.BatchNorm1d) and b.norm.num_features == 8 for b in batch.hidden_blocks())
    assert all(isinstance(b.norm, nn.LayerNorm) for b in layer.hidden_blocks())


@pytest.mark.parametrize("position", ["before", "after"])
def test_mlp_norm_position(position):
    torch.manual_seed(1)
    net = mlp(4, 2, depth=1, width=6, norm="layer", norm_position=position, activation="relu")
    block = net.hidden1
    x = torch.randn(5, 4)
    z = block.linear(x)
    expected = torch.relu(block.norm(z)) if position == "before" else block.norm(torch.relu(z))
    torch.testing.assert_close(block(x), expected)
    # After the activation, LayerNorm output is centred per example; before it, ReLU makes it non-negative.
    if position == "after":
        torch.testing.assert_close(block(x).mean(1), torch.zeros(5), atol=1e-5, rtol=0)
    else:
        assert bool((block(x) >= 0).all())


def test_mlp_residual_only_where_widths_agree():
    torch.manual_seed(2)
    net = mlp(4, 3, depth=3, width=[8, 8, 5], residual=True, activation="tanh")
    flags = [b.residual for b in net.hidden_blocks()]
    assert flags == [False, True, False]
    x = torch.randn(7, 8)
    torch.testing.assert_close(net.hidden2(x), x + torch.tanh(net.hidden2.linear(x)))
    plain = mlp(4, 3, depth=3, width=8)
    assert not any(b.residual for b in plain.hidden_blocks())


@settings(max_examples=25, deadline=None)
@given(
    in_features=st.integers(1, 20),
    out_features=st.integers(1, 12),
    widths=st.lists(st.integers(1, 24), min_size=1, max_size=6),
    batch=st.integers(1, 9),
    act=st.sampled_from(models.ACTIVATIONS),
    norm=st.sampled_from([None, "layer"]),
    residual=st.booleans(),
)
def test_mlp_shapes_property(in_features, out_features, widths, batch, act, norm, residual):
    net = mlp(in_features, out_features, depth=len(widths), width=widths, activation=act, norm=norm,
              residual=residual)
    out = net(torch.randn(batch, in_features))
    assert out.shape == (batch, out_features)
    blocks = net.hidden_blocks()
    assert len(blocks) == len(widths)
    assert [b.linear.out_features for b in blocks] == widths
    assert [b.linear.in_features for b in blocks] == [in_features, *widths[:-1]]
    n_params = sum(p.numel() for m in net.modules() if isinstance(m, nn.Linear) for p in m.parameters())
    sizes = [in_features, *widths, out_features]
    assert n_params == sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


@settings(max_examples=10, deadline=None)
@given(depth=st.integers(1, 8), width=st.integers(1, 16))
def test_mlp_int_width_property(depth, width):
    net = mlp(3, 2, depth=depth, width=width)
    assert [b.linear.out_features for b in net.hidden_blocks()] == [width] * depth


@pytest.mark.parametrize(
    "norm, kind",
    [(None, nn.Identity), ("batch", nn.BatchNorm2d), ("layer", nn.GroupNorm), ("instance", nn.GroupNorm),
     ("group", nn.GroupNorm)],
)
def test_small_cnn_norms(norm, kind):
    net = small_cnn(norm=norm, channels=(8, 16), groups=4)
    stages = [net.conv1, net.conv2]
    assert all(isinstance(s.norm, kind) for s in stages)
    if kind is nn.GroupNorm:
        groups = {"layer": 1, "instance": 8, "group": 4}[norm]
        assert net.conv1.norm.num_groups == groups
    # A conv feeding a norm needs no bias; without a norm it has one.
    assert all((s.conv.bias is None) == (norm is not None) for s in stages)
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_small_cnn_layout():
    net = small_cnn(in_channels=3, n_classes=4, channels=(4, 6, 8), activation="tanh")
    names = [n for n, _ in net.named_children()]
    assert names == ["conv1", "pool1", "conv2", "pool2", "conv3", "gap", "flatten", "output"]
    assert [s.conv.out_channels for s in (net.conv1, net.conv2, net.conv3)] == [4, 6, 8]
    assert net.conv1.conv.in_channels == 3 and isinstance(net.conv2.act, nn.Tanh)
    assert net.output.in_features == 8 and net.output.out_features == 4
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 4)


@settings(max_examples=10, deadline=None)
@given(channels=st.lists(st.integers(1, 6), min_size=1, max_size=3), n_classes=st.integers(1, 5),
       size=st.integers(4, 12))
def test_small_cnn_shapes_property(channels, n_classes, size):
    net = small_cnn(1, n_classes, channels=channels)
    assert net(torch.randn(2, 1, size, size)).shape == (2, n_classes)
