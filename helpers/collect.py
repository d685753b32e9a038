"""What the health report measures in its forward and backward passes, through one set of hooks.

- :class:`Collector` — every *call* of a nonlinearity, wherever it happens: an activation
  module (one row per call site of a module called more than once: ``act``, ``act#2``), a
  library's own activation class, or a functional call inside a module's ``forward``
  (``F.relu``, ``torch.tanh``, ``x.relu()``, in place or not: seen through a
  :class:`torch.overrides.TorchFunctionMode`, named ``<module>:<function>``). For each: the
  running moments of its input and output (:class:`helpers.stats.Moments`) and of the loss
  gradient reaching its output; the order in which call sites and modules first run; where a
  value is not finite.
- :func:`run_passes` — the passes themselves, recording each trainable matrix's gradient;
- :func:`weight_row` — one matrix's gradient norm and RMS, weight norm and scale, and the
  update-to-weight ratio one SGD or Adam step would make.

Used by :func:`helpers.health.report`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .hooks import Hooks
from .layers import FUNCTIONAL, NORM_TYPES, Matrix, is_activation
from .stats import Moments


class _Functional(TorchFunctionMode):
    """Sees every functional activation while the model runs, outside activation modules."""

    def __init__(self, collector: Collector) -> None:
        super().__init__()
        self.collector = collector

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        kind = FUNCTIONAL.get(getattr(func, "__name__", ""))
        c = self.collector
        if kind is not None and c.stack and not c.inside_activation and isinstance(out, torch.Tensor):
            c.record(f"{c.stack[-1]}:{kind}", kind, args[0] if args else None, out)
        return out


class Collector:
    """One set of hooks (and one function mode) for the whole report; see the module."""

    def __init__(self, model: nn.Module, functional: bool = True) -> None:
        self.model = model
        self.names = {m: (n or type(m).__name__) for n, m in model.named_modules()}
        self.order: dict[str, int] = {}  # call sites and modules, by first run
        self.kinds: dict[str, str] = {}  # call site -> the module class or function that ran
        self.moments: dict[str, Moments] = {}
        self.inputs: dict[str, Moments] = {}
        self.grad_sq: dict[str, list[float]] = {}
        self.non_finite: set[str] = set()
        self.calls: Counter = Counter()
        self.stack: list[str] = []
        self.inside_activation = 0
        self.previous: str | None = None  # the module that finished last
        self.normalized: set[str] = set()  # modules whose output a normalisation layer takes next
        self.hooks = Hooks()
        self.mode = _Functional(self) if functional else None

    def __enter__(self) -> Collector:
        try:
            self.hooks.forward_pre(self.model, lambda m, a: self.calls.clear())  # call sites count per pass
            for module, name in self.names.items():
                self.hooks.forward_pre(module, self._enter(name, is_activation(module)))
                self.hooks.forward(module, self._leave(name, module))
            if self.mode is not None:
                self.mode.__enter__()
        except BaseException:
            self.hooks.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.mode is not None:
                self.mode.__exit__(*exc)
        finally:
            self.hooks.remove()

    def _enter(self, name: str, activation: bool) -> Callable:
        def hook(module, args) -> None:
            self.stack.append(name)
            self.inside_activation += activation

        return hook

    def _leave(self, name: str, module: nn.Module) -> Callable:
        activation = is_activation(module)

        def hook(module, args, output) -> None:  # a forward hook's return value replaces the output
            if self.stack and self.stack[-1] == name:
                self.stack.pop()
            self.inside_activation -= activation
            self.order.setdefault(name, len(self.order) + 1)
            if self.previous is not None and isinstance(module, NORM_TYPES):
                self.normalized.add(self.previous)  # the layer whose output this norm normalises
            self.previous = name
            if activation and not self.inside_activation:
                self.record(name, type(module).__name__, args[0] if args else None, output, module)

        return hook

    def record(self, site: str, kind: str, inp, out, module: nn.Module | None = None) -> None:
        """Accumulate one call of a nonlinearity at ``site`` (``site#k`` for its k-th call in a pass)."""
        if not isinstance(out, torch.Tensor) or out.ndim < 2 or not out.is_floating_point():
            return
        self.calls[site] += 1
        if self.calls[site] > 1:
            site = f"{site}#{self.calls[site]}"
        self.order.setdefault(site, len(self.order) + 1)
        self.kinds.setdefault(site, kind)
        if out.requires_grad:
            try:
                out.register_hook(self._grad_hook(site))  # on a temporary tensor: gone with the graph
            except RuntimeError:  # e.g. a view modified in place later; skip its gradient
                pass
        if not torch.isfinite(out.detach()).all():
            self.non_finite.add(site)
        self.moments.setdefault(site, Moments()).add(module if module is not None else kind, out)
        if isinstance(inp, torch.Tensor) and inp.shape == out.shape and inp is not out:
            self.inputs.setdefault(site, Moments()).add(kind, inp)

    def _grad_hook(self, site: str) -> Callable:
        def hook(grad: torch.Tensor) -> None:
            g = grad.detach().to(torch.float64)
            if not torch.isfinite(g).all():
                self.non_finite.add(site)
            total = self.grad_sq.setdefault(site, [0.0, 0])
            total[0] += float((g * g).sum())
            total[1] += g.numel()

        return hook

    def combine_ranks(self) -> None:
        """Sum every accumulation over the processes of a ``torch.distributed`` group (a unit is dead
        only if it is dead on every rank); a no-op outside one."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        for store in (self.moments, self.inputs):
            for moments in store.values():
                moments.all_reduce()
        for site, total in self.grad_sq.items():
            t = torch.tensor(total, dtype=torch.float64)
            torch.distributed.all_reduce(t)
            self.grad_sq[site] = [float(t[0]), int(t[1])]

    def activation_rows(self) -> list[dict]:
        """One row per call site that ran, with its statistics."""
        rows = []
        for site, moments in self.moments.items():
            sq, n = self.grad_sq.get(site, (0.0, 0))
            pre = self.inputs[site].summary() if site in self.inputs else {}
            rows.append(dict(layer=site, kind="activation", module=self.kinds[site], index=self.order[site],
                             act_grad_rms=math.sqrt(sq / n) if n else float("nan"), **moments.summary(),
                             pre_mean=pre.get("act_mean", float("nan")), pre_std=pre.get("act_std", float("nan"))))
        return rows


@dataclass
class Passes:
    """What the forward/backward passes measured, beside the collector's activation moments."""

    losses: list[float] = field(default_factory=list)
    grads: dict[str, list[float]] = field(default_factory=dict)
    nnz: dict[str, list[float]] = field(default_factory=dict)
    used_norm: dict[str, list[float]] = field(default_factory=dict)
    non_finite: set[str] = field(default_factory=set)


def run_passes(model: nn.Module, batches: list, matrices: list[Matrix], loss_of: Loss) -> Passes:
    """Forward and backward passes over ``batches``, recording each trainable matrix's gradient."""
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    seen = Passes(grads={m.name: [] for m in matrices}, nnz={m.name: [] for m in matrices},
                  used_norm={m.name: [] for m in matrices})
    for batch in batches:
        loss = loss_of(batch, device)
        seen.losses.append(float(loss.detach()) if loss_of.source != "random" else float("nan"))
        if loss.requires_grad:
            loss.backward()
        for m in matrices:
            g = m.param.grad
            if g is None:
                continue
            norm = float(g.detach().norm())
            if not math.isfinite(norm):
                seen.non_finite.add(m.name)
            seen.grads[m.name].append(norm)
            seen.nnz[m.name].append(float((g != 0).sum()))
            if m.role == "embedding":  # a lookup table: judge the rows this data used
                rows = (g != 0).flatten(1).any(dim=1)
                seen.used_norm[m.name].append(float(m.param.detach()[rows].norm()))
        model.zero_grad(set_to_none=True)
    return seen


def weight_row(m: Matrix, index: int, seen: Passes, lr: float, optimizer: str) -> dict:
    """The row of one matrix: gradient norm and RMS, weight norm and scale (RMS × √fan-in, the
    gain an init scheme gives), and the update ratio of one step."""
    w = m.param.detach()
    weight_norm = float(w.norm())
    if seen.used_norm[m.name]:
        weight_norm = float(np.mean(seen.used_norm[m.name]))
    norm = float(np.mean(seen.grads[m.name])) if seen.grads[m.name] else float("nan")
    if optimizer == "sgd":
        step = lr * norm
    else:  # Adam's first step moves every weight with a non-zero gradient by lr
        step = lr * math.sqrt(float(np.mean(seen.nnz[m.name]))) if seen.nnz[m.name] else float("nan")
    rms = float(w.double().pow(2).mean().sqrt())
    return dict(layer=m.name, kind="weight", module=type(m.module).__name__, index=index, role=m.role,
                grad_norm=norm, grad_rms=norm / math.sqrt(max(w.numel(), 1)), weight_norm=weight_norm,
                weight_scale=rms * math.sqrt(m.fan_in),
                update_ratio=step / weight_norm if weight_norm > 0 else float("nan"))


def split_output(out) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(logits, loss)`` from what a model returns: a tensor; a tuple or list (its first tensor); a
    dict or an object with ``.logits``/``.loss`` (a Hugging Face output).

    >>> split_output({"logits": torch.zeros(2, 3), "loss": torch.tensor(1.0)})[1]
    tensor(1.)
    """
    if isinstance(out, torch.Tensor):
        return out, None
    get = out.get if isinstance(out, dict) else (lambda key: getattr(out, key, None))
    logits, loss = get("logits"), get("loss")
    if logits is None and isinstance(out, (tuple, list)):
        logits = next((t for t in out if isinstance(t, torch.Tensor)), None)
    return logits, loss


class Loss:
    """The loss of one batch, as the report computes it: ``loss_fn(logits, target)`` with targets
    (cross-entropy for integer targets, over every position of a sequence; mean squared error for
    float ones); else the loss the model computed itself (``labels`` among its inputs); else a
    seeded random output gradient, whose profile across layers means something but not its size."""

    def __init__(self, model: nn.Module, loss_fn: Callable | None, seed: int) -> None:
        self.model, self.loss_fn = model, loss_fn
        self.noise = torch.Generator().manual_seed(seed + 1)
        self.source = ""  # "target", "model" or "random"
        self.classes = 0  # K, for cross-entropy on integer targets
        self.probabilities = False  # the outputs given to the cross-entropy are already probabilities

    def _default(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.is_floating_point():
            return nn.functional.mse_loss(logits, target)
        self.classes = int(logits.shape[-1])
        with torch.no_grad():  # rows of probabilities: a softmax before the cross-entropy's own
            rows = logits.detach().float().flatten(0, -2)
            self.probabilities = bool((rows >= 0).all() and ((rows.sum(dim=-1) - 1).abs() < 1e-3).all())
        if logits.ndim > 2 and target.ndim == logits.ndim - 1:  # a sequence: every position
            return nn.functional.cross_entropy(logits.flatten(0, -2), target.flatten())
        return nn.functional.cross_entropy(logits, target)

    def __call__(self, batch, device: torch.device) -> torch.Tensor:
        batch = batch.to(device)
        logits, own = split_output(self.model(*batch.args, **batch.kwargs))
        if batch.target is not None:
            if logits is None:
                raise TypeError("the model's output has no tensor or .logits to compare with the targets; "
                                "pass a loss_fn that takes the output")
            self.source = "target"
            return (self.loss_fn or self._default)(logits, batch.target)
        if own is not None:
            self.source = "model"
            return own
        if logits is None:
            raise TypeError("the model's output has no tensor, .logits or .loss; give targets and a loss_fn")
        self.source = "random"
        cotangent = torch.randn(logits.shape, generator=self.noise).to(logits.device, logits.dtype)
        return (logits * cotangent).sum() / max(len(logits), 1)


def eval_gap(model: nn.Module, batch, device: torch.device) -> float:
    """‖eval-mode output − train-mode output‖ / ‖train-mode output‖ on one batch, for a model whose
    BatchNorm layers have running statistics from training (NaN otherwise)."""
    trained = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
               and m.track_running_stats and m.num_batches_tracked is not None and int(m.num_batches_tracked) > 0]
    if not trained:
        return float("nan")
    batch = batch.to(device)
    outs = []
    with torch.no_grad():
        for training in (True, False):
            model.train(training)
            logits, _ = split_output(model(*batch.args, **batch.kwargs))
            outs.append(logits.float())
    return float((outs[1] - outs[0]).norm() / outs[0].norm().clamp_min(1e-12))


def input_rms(batches: list) -> float:
    """The RMS of every floating-point input of ``batches`` (NaN if there is none)."""
    values = [t.detach().double().pow(2).mean() for b in batches for t in b.tensors()]
    return float(torch.stack(values).mean().sqrt()) if values else float("nan")
