"""Hooks as context managers: register on entry, remove on exit, whatever happens.

In the style of fastai's ``callback/hook.py``. Every hook the helpers place — the
monitor's, the report's, LSUV's, the chapters' — goes through this module, so none is
ever left behind on a model:

- :class:`Hooks` — a set of hook handles that removes them all on exit (also when the
  code inside the ``with`` block raises);
- :func:`capture` — keep the output (or input) of some modules as the model runs.

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
>>> with capture({"relu": net[1]}) as seen:
...     _ = net(torch.randn(2, 3))
>>> seen["relu"].shape, len(net[1]._forward_hooks)
(torch.Size([2, 4]), 0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ._checks import check_choice


class Hooks:
    """Handles of registered hooks; :meth:`remove` (or leaving the ``with`` block) removes all.

    >>> net = nn.Linear(2, 2)
    >>> with Hooks() as hooks:
    ...     hooks.forward(net, lambda module, inputs, output: None)
    ...     len(net._forward_hooks)
    1
    >>> len(net._forward_hooks)
    0
    """

    def __init__(self) -> None:
        self.handles: list[Any] = []

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __len__(self) -> int:
        return len(self.handles)

    def forward(self, module: nn.Module, fn: Callable) -> None:
        """``fn(module, inputs, output)`` after each forward pass of ``module``."""
        self.handles.append(module.register_forward_hook(fn))

    def forward_pre(self, module: nn.Module, fn: Callable) -> None:
        """``fn(module, inputs)`` before each forward pass of ``module``."""
        self.handles.append(module.register_forward_pre_hook(fn))

    def tensor(self, tensor: torch.Tensor, fn: Callable) -> None:
        """``fn(grad)`` when the gradient of ``tensor`` is computed."""
        self.handles.append(tensor.register_hook(fn))

    def remove(self) -> None:
        """Remove every hook registered through this object (idempotent)."""
        while self.handles:
            self.handles.pop().remove()


def capture(modules: Mapping[str, nn.Module], *, what: str = "output", detach: bool = True) -> _Capture:
    """Context manager keeping, by name, the last ``output`` (or ``input``) of each module.

    Inside the block the dict it yields fills as the model runs; the hooks are gone after.
    ``detach=False`` keeps the graph (to read gradients with ``retain_grad``).
    """
    check_choice("what", what, ("output", "input"))
    return _Capture(dict(modules), what, detach)


class _Capture:
    def __init__(self, modules: dict[str, nn.Module], what: str, detach: bool) -> None:
        self.modules, self.what, self.detach = modules, what, detach
        self.seen: dict[str, torch.Tensor] = {}
        self.hooks = Hooks()

    def _keep(self, name: str) -> Callable:
        def hook(module, inputs, output) -> None:
            value = output if self.what == "output" else inputs[0]
            self.seen[name] = value.detach() if self.detach else value

        return hook

    def __enter__(self) -> dict[str, torch.Tensor]:
        for name, module in self.modules.items():
            self.hooks.forward(module, self._keep(name))
        return self.seen

    def __exit__(self, *exc) -> None:
        self.hooks.remove()
