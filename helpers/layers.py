"""Which modules the helpers read: the one table of activation and weight-layer types.

- ``ACTIVATION_TYPES`` — the nonlinearities whose outputs the monitor and the report
  summarise (read *after* the nonlinearity);
- ``WEIGHT_TYPES`` — the layers whose ``weight`` :func:`helpers.init.init_` sets and whose
  gradients and updates the monitor and the report measure;
- :func:`activation_layers`, :func:`weight_layers` — those modules of a model, named as
  ``model.named_modules()`` names them, in registration order;
- :func:`check_module` — the argument check every helper that takes a model uses.

>>> from helpers.models import mlp
>>> [name for name, _ in weight_layers(mlp(4, 2, depth=2))]
['hidden1.linear', 'hidden2.linear', 'output']
"""

from __future__ import annotations

from typing import Any

from torch import nn

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Softplus, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
)
WEIGHT_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


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
    """``(name, module)`` for every activation module of ``model`` (``ACTIVATION_TYPES``)."""
    return _named(check_module("model", model), ACTIVATION_TYPES)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every linear and conv layer of ``model`` (``WEIGHT_TYPES``)."""
    return _named(check_module("model", model), WEIGHT_TYPES)
