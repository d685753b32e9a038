"""What the health report measures in its forward and backward passes, through one set of hooks.

- :class:`Collector` — per activation layer, the running moments of its outputs
  (:class:`helpers.stats.Moments`) and of the loss gradient reaching them; the order in
  which layers first run; where a value is not finite;
- :func:`run_passes` — the passes themselves, recording each weight layer's gradient;
- :func:`weight_row` — one weight layer's gradient norm and RMS, weight norm and the
  update-to-weight ratio one SGD or Adam step would make.

Used by :func:`helpers.health.report`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .hooks import Hooks
from .stats import Moments


class Collector:
    """One set of hooks for the whole report: per activation layer, the running moments of its
    outputs (:class:`helpers.stats.Moments`) and of the loss gradient reaching them; per
    layer, the order in which it first runs; the layers where a value is not finite."""

    def __init__(self, acts: list[tuple[str, nn.Module]], weights: list[tuple[str, nn.Module]]) -> None:
        self.acts, self.weights = acts, weights
        self.order: dict[str, int] = {}
        self.moments: dict[str, Moments] = {name: Moments() for name, _ in acts}
        self.grad_sq: dict[str, list[float]] = {}
        self.non_finite: set[str] = set()
        self.hooks = Hooks()

    def __enter__(self) -> Collector:
        for name, module in self.acts:
            self.hooks.forward(module, self._act_hook(name))
        for name, module in self.weights:
            self.hooks.forward(module, self._order_hook(name))
        return self

    def _order_hook(self, name: str) -> Callable:
        def hook(module, inputs, output) -> None:  # a forward hook's return value replaces the output
            self.order.setdefault(name, len(self.order) + 1)

        return hook

    def __exit__(self, *exc) -> None:
        self.hooks.remove()

    def _act_hook(self, name: str) -> Callable:
        def hook(module, inputs, output) -> None:
            self.order.setdefault(name, len(self.order) + 1)
            if not isinstance(output, torch.Tensor) or output.ndim < 2:
                return
            if output.requires_grad:
                try:
                    output.register_hook(self._grad_hook(name))  # on a temporary tensor: gone with the graph
                except RuntimeError:  # e.g. a view modified in place later; skip its gradient
                    pass
            if not torch.isfinite(output.detach()).all():
                self.non_finite.add(name)
            self.moments[name].add(module, output)

        return hook

    def _grad_hook(self, name: str) -> Callable:
        def hook(grad: torch.Tensor) -> None:
            g = grad.detach().to(torch.float64)
            if not torch.isfinite(g).all():
                self.non_finite.add(name)
            total = self.grad_sq.setdefault(name, [0.0, 0])
            total[0] += float((g * g).sum())
            total[1] += g.numel()

        return hook

    def activation_row(self, name: str, module: nn.Module) -> dict:
        sq, n = self.grad_sq.get(name, (0.0, 0))
        return dict(layer=name, kind="activation", module=type(module).__name__, index=self.order[name],
                    act_grad_rms=math.sqrt(sq / n) if n else float("nan"), **self.moments[name].summary())


@dataclass
class Passes:
    """What the forward/backward passes measured, beside the collector's activation moments."""

    losses: list[float] = field(default_factory=list)
    grads: dict[str, list[float]] = field(default_factory=dict)
    nnz: dict[str, list[float]] = field(default_factory=dict)
    non_finite: set[str] = field(default_factory=set)


def _batch_loss(out, yb, loss_fn: Callable | None, noise: torch.Generator) -> torch.Tensor:
    if loss_fn is not None:
        return loss_fn(out, yb)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model output is a {type(out).__name__}; give targets and a loss_fn for it")
    cotangent = torch.randn(out.shape, generator=noise).to(out.device, out.dtype)
    return (out * cotangent).sum() / max(len(out), 1)


def run_passes(model: nn.Module, batches: list, weights: list, loss_fn: Callable | None, seed: int) -> Passes:
    """Forward and backward passes over ``batches``, recording each weight layer's gradient."""
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    noise = torch.Generator().manual_seed(seed + 1)
    seen = Passes(grads={n: [] for n, _ in weights}, nnz={n: [] for n, _ in weights})
    for xb, yb in batches:
        loss = _batch_loss(model(xb.to(device)), None if yb is None else yb.to(device), loss_fn, noise)
        seen.losses.append(float(loss.detach()) if loss_fn is not None else float("nan"))
        if loss.requires_grad:
            loss.backward()
        for name, module in weights:
            g = module.weight.grad
            if g is None:
                continue
            norm = float(g.detach().norm())
            if not math.isfinite(norm):
                seen.non_finite.add(name)
            seen.grads[name].append(norm)
            seen.nnz[name].append(float((g != 0).sum()))
        model.zero_grad(set_to_none=True)
    return seen


def weight_row(name: str, module: nn.Module, index: int, seen: Passes, lr: float, optimizer: str) -> dict:
    """The row of one weight layer: gradient norm and RMS, weight norm, update ratio of one step."""
    w = module.weight.detach()
    weight_norm = float(w.norm())
    norm = float(np.mean(seen.grads[name])) if seen.grads[name] else float("nan")
    if optimizer == "sgd":
        step = lr * norm
    else:  # Adam's first step moves every weight with a non-zero gradient by lr
        step = lr * math.sqrt(float(np.mean(seen.nnz[name]))) if seen.nnz[name] else float("nan")
    return dict(layer=name, kind="weight", module=type(module).__name__, index=index, grad_norm=norm,
                grad_rms=norm / math.sqrt(max(w.numel(), 1)), weight_norm=weight_norm,
                update_ratio=step / weight_norm if weight_norm > 0 else float("inf"))
