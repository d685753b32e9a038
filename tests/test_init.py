"""helpers.init: schemes against torch.nn.init, gains, predicted variances against a simulation, LSUV."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers.init import gain, init_, lsuv_, predicted_variance, weight_variance
from helpers.models import activation as make_activation
from helpers.models import mlp

# float() of a parameter warns that it requires grad; harmless when reading a statistic.
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")

FAN_IN, FAN_OUT = 1000, 500  # a big layer: 500,000 weights, so sample variances are within ~0.5 %


@pytest.mark.parametrize(
    "name, torch_name, param",
    [("identity", "linear", None), ("sigmoid", "sigmoid", None), ("tanh", "tanh", None), ("relu", "relu", None),
     ("leaky_relu", "leaky_relu", 0.01)],
)
def test_gain_matches_torch(name, torch_name, param):
    assert gain(name) == pytest.approx(nn.init.calculate_gain(torch_name, param))


def test_gain_values_and_slopes():
    assert gain("tanh") == pytest.approx(5 / 3) and gain("relu") == pytest.approx(math.sqrt(2))
    assert gain("leaky_relu", negative_slope=0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert gain("prelu", negative_slope=0.3) == pytest.approx(nn.init.calculate_gain("leaky_relu", 0.3))
    assert gain("prelu", negative_slope=0.0) == pytest.approx(nn.init.calculate_gain("leaky_relu", 0.25))
    mean_slope = (1 / 8 + 1 / 3) / 2  # RReLU's slope in eval mode
    assert gain("rrelu") == pytest.approx(math.sqrt(2 / (1 + mean_slope**2)))
    assert float(nn.RReLU().eval()(torch.tensor(-1.0))) == pytest.approx(-mean_slope)


def _torch_reference(scheme: str, weight: torch.Tensor, activation: str, mode: str, slope: float, std: float):
    """Fill ``weight`` with torch.nn.init's own version of ``scheme``."""
    torch_act = "linear" if activation == "identity" else activation
    g = nn.init.calculate_gain(torch_act, slope if torch_act == "leaky_relu" else None)
    if scheme == "normal":
        return nn.init.normal_(weight, 0.0, std)
    if scheme == "uniform":
        return nn.init.uniform_(weight, -math.sqrt(3) * std, math.sqrt(3) * std)
    if scheme == "xavier_normal":
        return nn.init.xavier_normal_(weight, gain=g)
    if scheme == "xavier_uniform":
        return nn.init.xavier_uniform_(weight, gain=g)
    if scheme == "kaiming_normal":
        return nn.init.kaiming_normal_(weight, a=slope, mode=mode, nonlinearity=torch_act)
    if scheme == "kaiming_uniform":
        return nn.init.kaiming_uniform_(weight, a=slope, mode=mode, nonlinearity=torch_act)
    if scheme == "orthogonal":
        return nn.init.orthogonal_(weight, gain=g)
    raise AssertionError(scheme)


CASES = [
    ("normal", "relu", "fan_in", 0.01, 0.05),
    ("uniform", "relu", "fan_in", 0.01, 0.05),
    ("xavier_normal", "tanh", "fan_in", 0.01, 0.01),
    ("xavier_uniform", "relu", "fan_in", 0.01, 0.01),
    ("xavier_uniform", "sigmoid", "fan_in", 0.01, 0.01),
    ("kaiming_normal", "relu", "fan_in", 0.01, 0.01),
    ("kaiming_normal", "leaky_relu", "fan_out", 0.2, 0.01),
    ("kaiming_uniform", "tanh", "fan_in", 0.01, 0.01),
    ("kaiming_uniform", "relu", "fan_out", 0.01, 0.01),
    ("orthogonal", "tanh", "fan_in", 0.01, 0.01),
    ("orthogonal", "identity", "fan_in", 0.01, 0.01),
]


@pytest.mark.parametrize("scheme, act, mode, slope, std", CASES)
def test_scheme_variance_matches_torch_init(scheme, act, mode, slope, std):
    layer = nn.Linear(FAN_IN, FAN_OUT)
    init_(layer, scheme, activation=act, mode=mode, negative_slope=slope, std=std, seed=0)
    ours = float(layer.weight.detach().var())
    predicted = weight_variance(scheme, FAN_IN, FAN_OUT, activation=act, mode=mode, negative_slope=slope, std=std)
    reference = torch.empty(FAN_OUT, FAN_IN)
    torch.manual_seed(1)
    theirs = float(_torch_reference(scheme, reference, act, mode, slope, std).var())
    assert ours == pytest.approx(predicted, rel=0.02)
    assert ours == pytest.approx(theirs, rel=0.03)
    # same family of distribution: a uniform has kurtosis 1.8, a Gaussian 3
    kurtosis = lambda w: float(((w - w.mean()) ** 4).mean() / w.var() ** 2)  # noqa: E731
    if scheme != "orthogonal":
        assert kurtosis(layer.weight.detach()) == pytest.approx(kurtosis(reference), rel=0.05)
    if scheme.endswith("uniform"):
        bound = math.sqrt(3 * predicted)
        assert float(layer.weight.abs().max()) <= bound * (1 + 1e-6)
        assert float(layer.weight.abs().max()) > 0.99 * bound


def test_pytorch_default_matches_fresh_layer():
    layer = nn.Linear(FAN_IN, FAN_OUT)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    init_(layer, "pytorch_default", bias=3.0, seed=0)  # PyTorch's own biases are kept
    fresh = nn.Linear(FAN_IN, FAN_OUT)
    predicted = weight_variance("pytorch_default", FAN_IN, FAN_OUT)
    assert predicted == pytest.approx(1 / (3 * FAN_IN))
    assert float(layer.weight.var()) == pytest.approx(predicted, rel=0.02)
    assert float(layer.weight.var()) == pytest.approx(float(fresh.weight.var()), rel=0.03)
    bound = 1 / math.sqrt(FAN_IN)
    assert 0.9 * bound < float(layer.bias.abs().max()) <= bound


def test_conv_fans_match_torch():
    conv = nn.Conv2d(64, 128, 5)
    init_(conv, "kaiming_normal", activation="relu", seed=0)
    fan_in = 64 * 25
    assert float(conv.weight.var()) == pytest.approx(2 / fan_in, rel=0.02)
    reference = nn.init.kaiming_normal_(torch.empty_like(conv.weight), nonlinearity="relu")
    assert float(conv.weight.var()) == pytest.approx(float(reference.var()), rel=0.03)
    init_(conv, "xavier_normal", activation="identity")
    assert float(conv.weight.var()) == pytest.approx(2 / (fan_in + 128 * 25), rel=0.02)


def test_orthogonal_is_orthogonal():
    layer = nn.Linear(64, 64)
    init_(layer, "orthogonal", activation="tanh")
    w = layer.weight.detach()
    torch.testing.assert_close(w @ w.T, (5 / 3) ** 2 * torch.eye(64), atol=1e-4, rtol=0)
    assert weight_variance("orthogonal", 64, 64, activation="tanh") == pytest.approx((5 / 3) ** 2 / 64)
    wide = nn.Linear(30, 80)
    init_(wide, "orthogonal", activation="identity")
    w = wide.weight.detach()  # 80 x 30: orthonormal columns
    torch.testing.assert_close(w.T @ w, torch.eye(30), atol=1e-5, rtol=0)
    assert float(w.pow(2).mean()) == pytest.approx(weight_variance("orthogonal", 30, 80, activation="identity"))


def test_weight_variance_formulas():
    assert weight_variance("normal", 10, 20, std=0.3) == pytest.approx(0.09)
    assert weight_variance("xavier_normal", 100, 300, activation="identity") == pytest.approx(2 / 400)
    assert weight_variance("kaiming_uniform", 100, 50, activation="relu", mode="fan_out") == pytest.approx(2 / 50)
    assert weight_variance("kaiming_normal", 100, 50, scale=3.0) == pytest.approx(9 * 2 / 100)
    assert weight_variance("zeros", 5, 5) == 0.0 and weight_variance("constant", 5, 5) == 0.0
    assert weight_variance("lsuv", 40, 10) == pytest.approx(1 / 40)


def test_init_options():
    net = mlp(20, 5, depth=3, width=30, norm="batch")
    out = init_(net, "constant", value=0.5, bias=-1.0, scale=2.0)
    assert out is net
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert all(bool((m.weight == 1.0).all()) and bool((m.bias == -1.0).all()) for m in linears)
    assert all(bool((b.norm.weight == 1).all()) for b in net.hidden_blocks())  # norms untouched
    init_(net, "zeros")
    assert all(float(m.weight.abs().sum()) == 0.0 and float(m.bias.abs().sum()) == 0.0 for m in linears)
    a = init_(mlp(20, 5, depth=3), "xavier_uniform", seed=7)
    b = init_(mlp(20, 5, depth=3), "xavier_uniform", seed=7)
    c = init_(mlp(20, 5, depth=3), "xavier_uniform", seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.hidden1.linear.weight, c.hidden1.linear.weight)
    scaled = init_(mlp(20, 5, depth=3), "xavier_uniform", seed=7, scale=0.5)
    torch.testing.assert_close(scaled.output.weight, 0.5 * a.output.weight)


# -- predicted variance vs a simulated wide net --------------------------------------------------


def simulate(scheme, widths, act, *, input_variance=1.0, std=0.01, scale=1.0, slope=0.01, batch=1024, seed=0):
    """Per-layer pre-activation and activation variance of a bias-free net built and run by hand."""
    torch.manual_seed(seed)
    layers = nn.Sequential(*[nn.Linear(a, b, bias=False) for a, b in zip(widths[:-1], widths[1:])])
    init_(layers, scheme, activation=act, std=std, scale=scale, negative_slope=slope)
    phi = make_activation(act, negative_slope=slope).eval()
    h = math.sqrt(input_variance) * torch.randn(batch, widths[0])
    pre, post = [], []
    with torch.no_grad():
        for layer in layers:
            z = layer(h)
            h = phi(z)
            pre.append(float(z.var()))
            post.append(float(h.var()))
    return np.array(pre), np.array(post)


SIM_CASES = [
    ("kaiming_normal", "relu", {}),
    ("kaiming_uniform", "leaky_relu", {"slope": 0.2}),
    ("xavier_normal", "tanh", {}),
    ("xavier_uniform", "sigmoid", {"scale": 2.0}),
    ("orthogonal", "tanh", {"input_variance": 3.0}),
    ("normal", "tanh", {"std": 0.02}),  # vanishing
    ("normal", "tanh", {"std": 0.1}),  # saturating
    ("normal", "gelu", {"std": math.sqrt(2 / 512)}),
    ("pytorch_default", "relu", {}),  # shrinks by 6 per layer
    ("pytorch_default", "elu", {"input_variance": 4.0}),
]


@pytest.mark.parametrize("scheme, act, kw", SIM_CASES)
def test_predicted_variance_matches_simulation(scheme, act, kw):
    # Mean-field theory predicts the average over random nets: average 8 nets of width 512. (One net
    # alone drifts by up to ~20 % after 5 ReLU layers, through the mean direction of its activations.)
    widths = [512] * 5
    df = predicted_variance(
        scheme, widths, activation=act, input_variance=kw.get("input_variance", 1.0), std=kw.get("std", 0.01),
        scale=kw.get("scale", 1.0), negative_slope=kw.get("slope", 0.01),
    )
    assert list(df.columns) == ["layer", "pre_activation_var", "activation_var"]
    assert df.layer.tolist() == [1, 2, 3, 4]
    runs = [simulate(scheme, widths, act, batch=256, seed=seed, **kw) for seed in range(8)]
    pre, post = np.mean([r[0] for r in runs], axis=0), np.mean([r[1] for r in runs], axis=0)
    np.testing.assert_allclose(pre, df.pre_activation_var, rtol=0.12)
    np.testing.assert_allclose(post, df.activation_var, rtol=0.12)


def test_predicted_variance_relu_closed_form():
    df = predicted_variance("kaiming_normal", [100, 80, 60], activation="relu", input_variance=0.5)
    q1 = 100 * (2 / 100) * 0.5
    assert df.pre_activation_var[0] == pytest.approx(q1)
    assert df.activation_var[0] == pytest.approx(q1 / 2 - q1 / (2 * math.pi), rel=1e-4)
    assert df.pre_activation_var[1] == pytest.approx(80 * (2 / 80) * q1 / 2, rel=1e-6)
    flat = predicted_variance("normal", [50, 50, 50], activation="identity", std=0.1)
    np.testing.assert_allclose(flat.pre_activation_var, [0.5, 0.25], rtol=1e-9)  # 50 * 0.01 per layer
    zero = predicted_variance("zeros", [10, 10, 10], activation="sigmoid")
    assert zero.pre_activation_var.tolist() == [0.0, 0.0] and zero.activation_var.abs().max() < 1e-12


@pytest.mark.parametrize("act, q", [("tanh", 1000.0), ("sigmoid", 400.0), ("relu", 3.0), ("gelu", 50.0)])
def test_predicted_moments_match_monte_carlo(act, q):
    """The expectations over N(0, q) are accurate also far into saturation (large q) and at kinks."""
    df = predicted_variance("normal", [1000, 1000], activation=act, std=math.sqrt(q / 1000))
    assert df.pre_activation_var[0] == pytest.approx(q)
    z = math.sqrt(q) * torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    phi = make_activation(act).eval()(z)
    assert df.activation_var[0] == pytest.approx(float(phi.var()), rel=3e-3)


# -- LSUV ---------------------------------------------------------------------------------------


def _layer_output_variances(model, x):
    seen = []
    handles = [m.register_forward_hook(lambda m, i, o: seen.append(float(o.var())))
               for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return seen


def test_lsuv_gives_unit_variance_per_layer():
    torch.manual_seed(0)
    net = mlp(64, 10, depth=6, width=48, activation="tanh")
    net.train()
    x = torch.randn(256, 64) * 3
    assert lsuv_(net, x, activation="tanh") is net
    assert net.training  # mode restored
    variances = _layer_output_variances(net, x)
    assert len(variances) == 7
    assert all(abs(v - 1.0) < 0.05 for v in variances), variances
    assert all(float(m.bias.abs().max()) == 0.0 for m in net.modules() if isinstance(m, nn.Linear))
    assert not any(m._forward_hooks for m in net.modules())  # its hooks are removed


def test_lsuv_through_init_and_target():
    x = torch.randn(200, 16)
    a = init_(mlp(16, 4, depth=3, width=32), "lsuv", data=x, seed=3)
    b = lsuv_(init_(mlp(16, 4, depth=3, width=32), "zeros", seed=3), x)  # lsuv_ overwrites everything
    c = mlp(16, 4, depth=3, width=32)
    torch.manual_seed(3)
    c = lsuv_(c, x)
    assert torch.equal(a.hidden2.linear.weight, c.hidden2.linear.weight)
    assert all(abs(v - 1) < 0.05 for v in _layer_output_variances(b, x))
    half = lsuv_(mlp(16, 4, depth=3, width=32), x, target=0.25, tol=0.01)
    assert all(abs(v - 0.25) < 0.01 for v in _layer_output_variances(half, x))
    doubled = mlp(16, 4, depth=3, width=32)
    torch.manual_seed(3)
    doubled = lsuv_(doubled, x, scale=2.0)
    torch.testing.assert_close(doubled.output.weight, 2 * c.output.weight)
