r"""Named initialization schemes and the theory behind them.

For a layer :math:`y = Wx` with :math:`n_\text{in}` inputs, independent zero-mean
weights and inputs give

.. math:: \operatorname{Var}[y] = n_\text{in}\,\operatorname{Var}[w]\,\mathbb{E}[x^2],

so keeping the signal's scale through depth means choosing
:math:`\operatorname{Var}[w] \approx \text{gain}^2 / n`. Glorot & Bengio (2010) average
fan-in and fan-out (``xavier_*``); He et al. (2015) use fan-in and the ReLU gain
:math:`\sqrt 2`, because ReLU halves :math:`\mathbb{E}[x^2]` (``kaiming_*``).

- :func:`gain` — the recommended gain of an activation (PyTorch's values).
- :func:`weight_variance` — :math:`\operatorname{Var}[w]` a scheme gives.
- :func:`init_` — apply a scheme to every linear and conv layer of any module.
- :func:`predicted_variance` — the per-layer variance a scheme predicts (the mean-field
  recursion of Poole et al. 2016, exact in the wide limit).
- :func:`lsuv_` — layer-sequential unit-variance init (Mishkin & Matas 2016).

Used by every chapter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._checks import check_choice, check_int, check_number
from .hooks import capture
from .layers import check_module, weight_layers
from .models import ACTIVATIONS
from .models import activation as make_activation

_GAINS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "rrelu")
_RRELU_SLOPE = (1 / 8 + 1 / 3) / 2  # mean slope of nn.RReLU's default range (its eval mode)


@dataclass(frozen=True)
class Scheme:
    """One initialization scheme: how its weights are drawn and the variance they get.

    ``draw`` is ``"normal"``, ``"uniform"`` (both zero-mean, with the variance below),
    ``"orthogonal"``, ``"constant"``, ``"pytorch"`` (the layer's own ``reset_parameters``)
    or ``"lsuv"``; ``variance(fan_in, fan_out, gain², std, mode)`` gives Var[w];
    ``default_gain`` is the gain without an ``activation`` (torch's own default);
    ``formula`` is how the book writes Var[w].
    """

    draw: str
    variance: Callable[[int, int, float, float, str], float]
    formula: str
    default_gain: float = 1.0


def _fan(fan_in: int, fan_out: int, mode: str) -> int:
    return fan_in if mode == "fan_in" else fan_out


#: The schemes by name, with their variance formula. Xavier and orthogonal default to gain 1
#: and Kaiming to √2, as ``torch.nn.init`` does.
SCHEMES: dict[str, Scheme] = {
    "normal": Scheme("normal", lambda fi, fo, g2, std, m: std**2, "std²"),
    "uniform": Scheme("uniform", lambda fi, fo, g2, std, m: std**2, "std²"),
    "xavier_normal": Scheme("normal", lambda fi, fo, g2, std, m: g2 * 2.0 / (fi + fo), "gain²·2/(n_in+n_out)"),
    "xavier_uniform": Scheme("uniform", lambda fi, fo, g2, std, m: g2 * 2.0 / (fi + fo), "gain²·2/(n_in+n_out)"),
    "kaiming_normal": Scheme("normal", lambda fi, fo, g2, std, m: g2 / _fan(fi, fo, m), "gain²/n_mode",
                             math.sqrt(2.0)),
    "kaiming_uniform": Scheme("uniform", lambda fi, fo, g2, std, m: g2 / _fan(fi, fo, m), "gain²/n_mode",
                              math.sqrt(2.0)),
    "orthogonal": Scheme("orthogonal", lambda fi, fo, g2, std, m: g2 / max(fi, fo), "gain²/max(n_in, n_out)"),
    "zeros": Scheme("constant", lambda fi, fo, g2, std, m: 0.0, "0"),
    "constant": Scheme("constant", lambda fi, fo, g2, std, m: 0.0, "0"),
    "pytorch_default": Scheme("pytorch", lambda fi, fo, g2, std, m: 1.0 / (3.0 * fi), "1/(3·n_in)"),
    "lsuv": Scheme("lsuv", lambda fi, fo, g2, std, m: 1.0 / fi, "rescaled until Var[output] = 1"),
}
_USES_GAIN = {"xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform", "orthogonal", "lsuv"}


def gain(activation: str, *, negative_slope: float = 0.01) -> float:
    r"""The gain PyTorch recommends for an activation (``torch.nn.init.calculate_gain``).

    identity and sigmoid 1, tanh 5/3, ReLU :math:`\sqrt 2`, leaky ReLU
    :math:`\sqrt{2/(1+a^2)}` (PReLU with its initial slope, RReLU with its mean slope).

    >>> round(gain("relu"), 4)
    1.4142
    """
    check_choice("activation", activation, _GAINS)
    if activation == "prelu":
        return nn.init.calculate_gain("leaky_relu", negative_slope or 0.25)
    if activation == "rrelu":
        return nn.init.calculate_gain("leaky_relu", _RRELU_SLOPE)
    name = "linear" if activation == "identity" else activation
    return nn.init.calculate_gain(name, negative_slope if name == "leaky_relu" else None)


def scheme_gain(scheme: str, activation: str | None = None, *, negative_slope: float = 0.01) -> float:
    """The gain ``scheme`` uses: that of ``activation``, or torch's default when it is None.

    >>> scheme_gain("xavier_normal"), round(scheme_gain("kaiming_normal"), 4), scheme_gain("normal", "relu")
    (1.0, 1.4142, 1.0)
    """
    check_choice("scheme", scheme, SCHEMES)
    if scheme not in _USES_GAIN:
        return 1.0
    if activation is None:
        return SCHEMES[scheme].default_gain
    return gain(activation, negative_slope=negative_slope)


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    return nn.init._calculate_fan_in_and_fan_out(weight)


def weight_variance(
    scheme: str, fan_in: int, fan_out: int, *, activation: str | None = None, std: float = 0.01,
    mode: str = "fan_in", negative_slope: float = 0.01, scale: float = 1.0,
) -> float:
    r"""Variance of one weight under ``scheme`` (before ``lsuv`` rescaling): ``SCHEMES[scheme].formula``.

    ``normal`` and ``uniform`` have standard deviation ``std``; ``xavier_*`` give
    :math:`\text{gain}^2\cdot 2/(n_\text{in}+n_\text{out})`; ``kaiming_*`` give
    :math:`\text{gain}^2/n_\text{mode}`; ``orthogonal`` :math:`\text{gain}^2/n_\text{in}`
    for square matrices; ``pytorch_default`` :math:`1/(3 n_\text{in})`. The gain is that of
    ``activation`` (see :func:`scheme_gain`). Everything is multiplied by ``scale**2``.

    >>> round(weight_variance("kaiming_normal", 100, 50), 12)
    0.02
    """
    check_choice("scheme", scheme, SCHEMES)
    check_int("fan_in", fan_in, minimum=1)
    check_int("fan_out", fan_out, minimum=1)
    check_choice("mode", mode, ("fan_in", "fan_out"))
    std = check_number("std", std, minimum=0.0)
    g2 = scheme_gain(scheme, activation, negative_slope=negative_slope) ** 2
    return SCHEMES[scheme].variance(fan_in, fan_out, g2, std, mode) * scale**2


def _draw_(layer: nn.Module, scheme: str, g: float, std: float, value: float, mode: str) -> None:
    """Draw one layer's weight under ``scheme`` (gain ``g``), in place, without grad."""
    w, draw = layer.weight, SCHEMES[scheme].draw
    if draw == "pytorch":
        layer.reset_parameters()
    elif draw == "orthogonal":
        nn.init.orthogonal_(w, gain=g)
    elif draw == "constant":
        nn.init.constant_(w, value if scheme == "constant" else 0.0)
    else:
        fan_in, fan_out = _fans(w)
        sd = math.sqrt(SCHEMES[scheme].variance(fan_in, fan_out, g * g, std, mode))
        if scheme in ("xavier_normal", "xavier_uniform"):  # torch's own arithmetic, bit for bit
            sd = g * math.sqrt(2.0 / float(fan_in + fan_out))
        elif scheme in ("kaiming_normal", "kaiming_uniform"):
            sd = g / math.sqrt(_fan(fan_in, fan_out, mode))
        if draw == "normal":
            nn.init.normal_(w, 0.0, sd)
        else:
            nn.init.uniform_(w, -math.sqrt(3.0) * sd, math.sqrt(3.0) * sd)


def init_(
    model: nn.Module,
    scheme: str,
    *,
    activation: str | None = None,
    std: float = 0.01,
    value: float = 0.0,
    mode: str = "fan_in",
    scale: float = 1.0,
    bias: float = 0.0,
    negative_slope: float = 0.01,
    data: torch.Tensor | None = None,
    seed: int | None = None,
) -> nn.Module:
    """Initialize every ``Linear`` and ``Conv`` weight of ``model`` in place; return it.

    Args:
        scheme: one of ``SCHEMES``. ``normal``/``uniform`` use ``std``; ``constant``
            uses ``value``; ``lsuv`` needs ``data`` (a batch of inputs).
        activation: the net's activation, for the gain of xavier, kaiming, orthogonal and
            lsuv; None keeps torch's default gain (1 for xavier and orthogonal, √2 for kaiming).
        mode: ``"fan_in"`` or ``"fan_out"`` for kaiming.
        scale: multiply every weight by this afterwards (an init-scale knob).
        bias: value of every bias (``pytorch_default`` keeps PyTorch's own biases).
        seed: draw the weights from this seed; torch's global random state is left as it was.

    >>> from helpers.models import mlp
    >>> net = init_(mlp(64, 10, depth=3), "kaiming_normal", seed=0)
    """
    check_choice("scheme", scheme, SCHEMES)
    check_choice("mode", mode, ("fan_in", "fan_out"))
    check_number("scale", scale)
    check_number("bias", bias)
    std = check_number("std", std, minimum=0.0)
    value = check_number("value", value)
    check_module("model", model)
    if seed is not None:
        check_int("seed", seed, minimum=0)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        if scheme == "lsuv":
            if data is None:
                raise ValueError("scheme='lsuv' needs data=<a batch of inputs>; it is data-dependent")
            return lsuv_(model, data, activation=activation, scale=scale, bias=bias)
        g = scheme_gain(scheme, activation, negative_slope=negative_slope)
        layers = [m for _, m in weight_layers(model)]
        if not layers:
            raise ValueError("model has no Linear or Conv layer to initialize")
        with torch.no_grad():
            for layer in layers:
                _draw_(layer, scheme, g, std, value, mode)
                layer.weight.mul_(scale)
                if layer.bias is not None and scheme != "pytorch_default":
                    nn.init.constant_(layer.bias, bias)
    return model


def _second_moments(act: str, q: np.ndarray, negative_slope: float, nodes: int = 4001):
    """E[φ(z)] and E[φ(z)²] for z ~ N(0, q), by the trapezoid rule on a fine grid over ±12 sd.

    Gauss–Hermite quadrature converges slowly at a kink (ReLU's mean was 0.6 % off with 121
    nodes); the trapezoid rule with a node at the kink is accurate to about 1e-6 here.
    """
    x = np.linspace(-12.0, 12.0, nodes)
    w = np.exp(-0.5 * x**2)
    w = w / w.sum()
    module = make_activation(act, negative_slope=negative_slope).eval()
    z = torch.as_tensor(np.sqrt(np.maximum(q, 0.0))[..., None] * x, dtype=torch.float64)
    with torch.no_grad():
        phi = module(z).numpy()
    return (phi * w).sum(-1), (phi**2 * w).sum(-1)


def predicted_variance(
    scheme: str,
    widths: Sequence[int],
    *,
    activation: str = "tanh",
    input_variance: float = 1.0,
    std: float = 0.01,
    mode: str = "fan_in",
    scale: float = 1.0,
    negative_slope: float = 0.01,
) -> pd.DataFrame:
    r"""Predicted per-layer variance of a bias-free MLP with ``widths = [n_0, …, n_L]``.

    The mean-field recursion (Poole et al. 2016), exact as widths grow: with
    zero-mean inputs of variance ``input_variance``,

    .. math::
        q_1 = n_0 \operatorname{Var}[w_1]\,\operatorname{Var}[x],\qquad
        q_l = n_{l-1}\operatorname{Var}[w_l]\;\mathbb{E}_{z\sim N(0,q_{l-1})}[\phi(z)^2],

    and the activation variance is :math:`\mathbb{E}[\phi(z)^2]-\mathbb{E}[\phi(z)]^2`.
    For ReLU, :math:`\mathbb{E}[\phi(z)^2] = q/2`: the factor 1/2 of He et al. (2015).

    Returns a tidy DataFrame with columns ``layer`` (1…L), ``pre_activation_var`` and
    ``activation_var``.

    >>> df = predicted_variance("kaiming_normal", [100] * 4, activation="relu")
    >>> [round(v, 3) for v in df.pre_activation_var]
    [2.0, 2.0, 2.0]
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_number("input_variance", input_variance, minimum=0.0)
    if isinstance(widths, str) or not hasattr(widths, "__iter__"):
        raise TypeError(f"widths must be a sequence of layer sizes [n_0, ..., n_L], got {widths!r}")
    widths = [check_int("widths", n, minimum=1) for n in widths]
    if len(widths) < 2:
        raise ValueError(f"widths={widths!r} needs at least two sizes (input and one layer)")
    rows, second_moment = [], input_variance
    for layer, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:]), start=1):
        var_w = weight_variance(
            scheme, n_in, n_out, activation=activation, std=std, mode=mode,
            negative_slope=negative_slope, scale=scale,
        )
        q = n_in * var_w * second_moment
        mean, second_moment = (float(v) for v in _second_moments(activation, np.array(q), negative_slope))
        rows.append({"layer": layer, "pre_activation_var": q, "activation_var": second_moment - mean**2})
    return pd.DataFrame(rows)


def lsuv_(
    model: nn.Module,
    data: torch.Tensor,
    *,
    activation: str | None = None,
    target: float = 1.0,
    tol: float = 0.05,
    max_iter: int = 10,
    scale: float = 1.0,
    bias: float = 0.0,
) -> nn.Module:
    r"""Layer-sequential unit-variance init (Mishkin & Matas 2016), in place.

    Start from orthogonal weights; then, layer by layer from the input, feed ``data``
    and divide the layer's weight by :math:`\sqrt{\operatorname{Var}[\text{output}]}`
    until the variance of its output is within ``tol`` of ``target``.

    >>> from helpers.models import mlp
    >>> net = lsuv_(mlp(64, 10, depth=5), torch.randn(256, 64))
    """
    check_number("target", target, minimum=0.0, strict=True)
    check_number("tol", tol, minimum=0.0, strict=True)
    check_int("max_iter", max_iter, minimum=1)
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"data must be a torch.Tensor batch, got {type(data).__name__}")
    init_(model, "orthogonal", activation=activation if activation in _GAINS else None, bias=bias)
    layers = [m for _, m in weight_layers(model)]
    was_training = model.training
    model.eval()
    try:
        for layer in layers:
            with capture({"out": layer}) as seen:
                for _ in range(max_iter):
                    with torch.no_grad():
                        model(data)
                    var = float(seen["out"].var())
                    if abs(var - target) < tol or var == 0.0:
                        break
                    with torch.no_grad():
                        layer.weight.mul_(math.sqrt(target / var))
        with torch.no_grad():
            for layer in layers:
                layer.weight.mul_(scale)
    finally:
        model.train(was_training)
    return model
