"""Which modules the helpers read: the one table of activation and weight-layer types.

- ``ACTIVATION_TYPES`` — the nonlinearities whose outputs the monitor and the report
  summarise (read *after* the nonlinearity);
- ``WEIGHT_TYPES`` — the layers whose ``weight`` :func:`helpers.init.init_` sets and whose
  gradients and updates the monitor and the report measure;
- :func:`activation_layers`, :func:`weight_layers` — those modules of a model, named as
  ``model.named_modules()`` names them, in registration order;
- :func:`is_activation` — an activation module: one of ``ACTIVATION_TYPES``, or a library's
  own class (Hugging Face's ``GELUActivation``, timm's ``GELU``…): a leaf without parameters
  whose class name names a nonlinearity;
- :func:`matrices` — every parameter with two or more dimensions (weights of linear, conv,
  attention, recurrent and embedding layers, Hugging Face's ``Conv1D``), each with the name a
  report shows, its module, and its true fan-in;
- :data:`FUNCTIONAL` — the functional activations (``F.relu``, ``torch.tanh``, ``x.relu()`` …)
  by the name torch gives the function;
- :func:`check_module` — the argument check every helper that takes a model uses.

>>> from helpers.models import mlp
>>> [name for name, _ in weight_layers(mlp(4, 2, depth=2))]
['hidden1.linear', 'hidden2.linear', 'output']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Softplus, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
)
WEIGHT_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Class names of activation modules from other libraries (matched when the module is a leaf
#: without parameters): GELUActivation, NewGELUActivation, QuickGELUActivation, SiLUActivation…
ACTIVATION_NAME = re.compile(r"(?i)(gelu|silu|swish|relu|tanh|sigmoid|mish|softplus|elu)")
#: The functional activations, by the name torch gives the function (in-place ones end in ``_``).
FUNCTIONAL: dict[str, str] = {
    name: name.rstrip("_") for name in (
        "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "celu", "gelu", "silu",
        "mish", "softplus", "hardtanh", "hardtanh_", "hardswish", "tanh", "tanh_", "sigmoid", "sigmoid_",
    )
}
EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)
#: Normalisation layers (a weight layer whose output goes straight into one is scale-invariant).
NORM_TYPES: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def is_activation(module: nn.Module) -> bool:
    """An activation module: one of ``ACTIVATION_TYPES``, or a parameter-free leaf whose class
    name names a nonlinearity (``ACTIVATION_NAME``).

    >>> is_activation(nn.GELU()), is_activation(nn.Linear(2, 2)), is_activation(nn.Dropout())
    (True, False, False)
    """
    if isinstance(module, ACTIVATION_TYPES):
        return True
    leaf = next(module.children(), None) is None and next(module.parameters(), None) is None
    return leaf and bool(ACTIVATION_NAME.search(type(module).__name__))


@dataclass(frozen=True)
class Matrix:
    """A parameter of two or more dimensions, as the report names and judges it.

    ``name`` is the module's name for a leaf module's ``weight`` (``hidden1.linear``), else the
    parameter's full name (``layers.0.self_attn.in_proj_weight``, ``lstm.weight_ih_l0``);
    ``role`` is ``"embedding"`` (a lookup table), ``"query_key"`` (attention's query and key
    projections) or ``""``; ``fan_in`` counts the inputs one output sums over.
    """

    name: str
    param_name: str
    param: torch.Tensor
    module: nn.Module
    module_name: str
    role: str
    fan_in: int


_QUERY_KEY = re.compile(r"(^|[._])(q|k|query|key|q_proj|k_proj|to_q|to_k|wq|wk|q_lin|k_lin|c_attn|qkv)$")
_QUERY_KEY_PARAMS = ("in_proj_weight", "q_proj_weight", "k_proj_weight")  # nn.MultiheadAttention's own


def _fan_in(module: nn.Module, param: torch.Tensor) -> int:
    if type(module).__name__ == "Conv1D":  # Hugging Face's Conv1D stores (in, out)
        return int(param.shape[0])
    return int(param[0].numel()) if param.ndim >= 2 else 1


def matrices(model: nn.Module, *, trainable: bool = True) -> list[Matrix]:
    """Every parameter of ``model`` with two or more dimensions that (does not) require grad.

    >>> [m.name for m in matrices(nn.Sequential(nn.Embedding(5, 3), nn.LSTM(3, 4)))]
    ['0', '1.weight_ih_l0', '1.weight_hh_l0']
    """
    owners: dict[int, tuple[str, nn.Module, str]] = {}
    for module_name, module in check_module("model", model).named_modules():
        for local, param in module.named_parameters(recurse=False):
            owners.setdefault(id(param), (module_name, module, local))
    found = []
    for param_name, param in model.named_parameters():
        if param.ndim < 2 or param.requires_grad != trainable:
            continue
        module_name, module, local = owners[id(param)]
        leaf = next(module.children(), None) is None
        name = (module_name or type(module).__name__) if (local == "weight" and leaf) else param_name
        role = "embedding" if isinstance(module, EMBEDDING_TYPES) else ""
        if (_QUERY_KEY.search(module_name) and local == "weight") or local in _QUERY_KEY_PARAMS:
            role = "query_key"
        found.append(Matrix(name, param_name, param, module, module_name, role, _fan_in(module, param)))
    return found


def check_module(name: str, value: Any) -> nn.Module:
    """Return ``value`` if it is an ``nn.Module``, else raise ``TypeError`` naming ``name``.

    >>> check_module("model", "net")
    Traceback (most recent call last):
    ...
    TypeError: model must be a torch.nn.Module, got str
    """
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def _named(model: nn.Module, types: tuple[type[nn.Module], ...]) -> list[tuple[str, nn.Module]]:
    return [(n or type(m).__name__, m) for n, m in model.named_modules() if isinstance(m, types)]


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every activation module of ``model`` (see :func:`is_activation`)."""
    return [(n or type(m).__name__, m) for n, m in check_module("model", model).named_modules() if is_activation(m)]


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every linear and conv layer of ``model`` (``WEIGHT_TYPES``)."""
    return _named(check_module("model", model), WEIGHT_TYPES)


SCALED_DOWN = 1e-4  # a parameter no larger than this (in absolute value) scales its branch down to ~nothing


def scaled_down(model: nn.Module) -> list[str]:
    """Parameters (not biases) that are all zero or tiny: zero-initialised residual branches and
    heads (Goyal et al. 2017's zero-γ, SkipInit, a zero-initialised classifier), LayerScale
    (Touvron et al. 2021, γ = 1e-6) and ReZero. Standard practice: the weights behind them get
    (almost) no gradient at the first step.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    >>> _ = nn.init.zeros_(net[1].weight)
    >>> scaled_down(net)
    ['1.weight']
    """
    return [name for name, p in check_module("model", model).named_parameters()
            if not name.rsplit(".", 1)[-1].startswith("bias")  # biases, Fixup's scalar biases too
            and p.numel() and float(p.detach().abs().max()) <= SCALED_DOWN]


def behind(layer: str, scaled: list[str]) -> str:
    """The scaled-down parameter (see :func:`scaled_down`) whose block holds ``layer``, or "".

    A parameter ``a.b.bn3.weight`` scales the block ``a.b``: every layer named ``a.b.…`` is
    behind it; a parameter of a top-level module (a zero-initialised head) is in front of all.

    >>> behind("layer1.0.conv1", ["layer1.0.bn3.weight"]), behind("layer2.0.conv1", ["layer1.0.bn3.weight"])
    ('layer1.0.bn3.weight', '')
    """
    for name in scaled:
        parts = name.split(".")
        block = ".".join(parts[:-2])  # drop the parameter and its module
        if layer != ".".join(parts[:-1]) and (not block or layer.startswith(block + ".")):
            return name
    return ""
