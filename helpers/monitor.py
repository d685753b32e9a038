"""Per-layer statistics of activations, gradients and updates, on any ``nn.Module``.

:class:`Monitor` is a context manager in the style of fastai's hooks: it registers
forward hooks on the activation modules (so activations are recorded *after* the
nonlinearity) and gradient hooks on the weights of the linear and conv layers, and
removes every hook on exit. It records at sampled steps only and keeps fixed-size
summaries, never raw tensors:

- ``act_mean``, ``act_std``: mean and standard deviation of the layer's output;
- ``frac_zero``: share of outputs exactly 0 (the "relu_rate" of a popular blog post on
  dead ReLUs; see the dead-ReLU chapter);
- ``frac_saturated``: share in the flat tails, ``|tanh| > 0.97`` or sigmoid outside
  ``[0.03, 0.97]`` (NaN for activations without flat tails);
- ``frac_dead``: share of units whose output is 0 for *every* example of the batch (a
  unit is a feature, or a channel of a conv layer);
- ``grad_norm``, ``grad_abs_sum``: L2 norm and summed absolute value of the weight's gradient;
- ``weight_norm``: L2 norm of the weight;
- ``update_ratio``: ``||ΔW|| / ||W||`` over the optimizer step that followed;

plus fixed-bin histograms of each activation (:meth:`Monitor.histograms`).

Steps are numbered from 1, as in :func:`helpers.train.fit`; step 1 (the net at
initialization) and every ``every``-th step are sampled. Memory is bounded: when
more than ``max_samples`` steps have been sampled, the monitor keeps every other one
and doubles its sampling interval, so a run of any length keeps at most
``max_samples + 1`` samples per layer.

Used by every chapter; :func:`snapshot` is the one-shot version for measurements at
initialization.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._checks import check_int
from .hooks import Hooks
from .layers import activation_layers, check_module, matrices
from .stats import ACTIVATION_QUANTITIES, activation_stats, distributed, update_ratio

WEIGHT_QUANTITIES = ("grad_norm", "grad_abs_sum", "weight_norm", "update_ratio")
COLUMNS = ["step", "layer", "index", "kind", "quantity", "value"]
__all__ = ["ACTIVATION_QUANTITIES", "COLUMNS", "WEIGHT_QUANTITIES", "Monitor", "preserved_state", "snapshot"]


def default_hist_range(module: nn.Module) -> tuple[float, float]:
    """Histogram range for an activation: tanh [-1, 1], sigmoid [0, 1], else [-4, 4]."""
    if isinstance(module, nn.Tanh):
        return (-1.0, 1.0)
    if isinstance(module, nn.Sigmoid):
        return (0.0, 1.0)
    return (-4.0, 4.0)


@dataclass
class _Layer:
    name: str
    index: int
    module: nn.Module
    weight: torch.Tensor | None = None  # the matrix of a weight layer


class Monitor:
    """Record per-layer statistics of ``model`` every ``every`` training steps.

    Args:
        model: any ``nn.Module``.
        every: sample one step in ``every`` (doubled whenever ``max_samples`` is exceeded). The
            default, 50, keeps the monitor's cost within 5 % of a small net's training step
            (``benchmarks/monitor_overhead.py``); a step that is not sampled costs one hook call.
            ``wandb.watch`` samples every 1,000 steps by default.
        max_samples: most sampled steps kept; older samples are thinned to fit.
        activations: record activation statistics and histograms.
        gradients: record gradient norms per weight layer.
        updates: record update-to-weight ratios per weight layer.
        bins: number of histogram bins; ``hist_range`` overrides the per-activation range
            (values outside it are counted in the edge bins).
        auto_step: count a step at each forward pass of ``model`` with gradients enabled
            (a training step). Set False and call :meth:`step` yourself for loops with
            several forward passes per step.

    >>> from helpers.models import mlp
    >>> net = mlp(8, 2, depth=2, width=16)
    >>> with Monitor(net) as mon:
    ...     net(torch.randn(32, 8)).sum().backward()
    >>> sorted(mon.to_frame().layer.unique())
    ['hidden1.act', 'hidden1.linear', 'hidden2.act', 'hidden2.linear', 'output']
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int = 50,
        max_samples: int = 200,
        activations: bool = True,
        gradients: bool = True,
        updates: bool = True,
        bins: int = 40,
        hist_range: tuple[float, float] | None = None,
        auto_step: bool = True,
    ) -> None:
        self.model = check_module("model", model)
        self.every = check_int("every", every, minimum=1)
        self.max_samples = check_int("max_samples", max_samples, minimum=2)
        self.bins = check_int("bins", bins, minimum=1)
        if hist_range is not None and not (len(hist_range) == 2 and hist_range[0] < hist_range[1]):
            raise ValueError(f"hist_range={hist_range!r} is not valid; give (low, high) with low < high")
        self.hist_range = hist_range
        self.record_activations, self.record_gradients, self.record_updates = (
            activations, gradients, updates,
        )
        self.auto_step = auto_step
        self.act_layers = [_Layer(n, i, m) for i, (n, m) in enumerate(activation_layers(model), 1)]
        self.weight_layers = [_Layer(m.name, i, m.module, m.param) for i, m in enumerate(matrices(model), 1)]
        self._calls: dict[str, int] = {}  # calls of each activation module in the current step
        self.current_step = 0  # the first training forward pass is step 1, as in fit
        self._rows: dict[int, list[tuple]] = {}
        self._hists: dict[int, list[tuple]] = {}
        self._previous_weights: dict[str, torch.Tensor] | None = None
        self._previous_step: int | None = None
        self._hooks = Hooks()  # the step counter, for the whole ``with`` block
        self._sample_hooks = Hooks()  # the measuring hooks, only while the current step is sampled

    # -- life cycle ----------------------------------------------------------------------------
    def __enter__(self) -> Monitor:
        if self.attached:
            raise RuntimeError("this Monitor is already attached; use one `with` block at a time")
        try:
            if self.auto_step:
                self._hooks.forward_pre(self.model, self._on_root_forward)
            else:
                self.step()
        except BaseException:
            self.remove()
            raise
        return self

    def _attach_measuring_hooks(self) -> None:
        """Hooks on every layer, for a sampled step only: a step that is not sampled costs one call."""
        if self._sample_hooks:
            return
        try:
            if self.record_activations:
                for layer in self.act_layers:
                    self._sample_hooks.forward(layer.module, self._activation_hook(layer))
            if self.record_gradients:
                for layer in self.weight_layers:  # trainable matrices only: a frozen one has no gradient
                    self._sample_hooks.tensor(layer.weight, self._gradient_hook(layer))
        except BaseException:
            self._sample_hooks.remove()
            raise

    def __exit__(self, *exc) -> None:
        self.flush()
        self.remove()

    def flush(self) -> None:
        """Record the update ratio of the last sampled step (called on exit)."""
        if self.record_updates and self._previous_weights is not None:
            self._record_updates()

    def remove(self) -> None:
        """Remove every hook (also called on leaving the ``with`` block)."""
        self._hooks.remove()
        self._sample_hooks.remove()
        self._previous_weights = None

    @property
    def attached(self) -> bool:
        """True while the hooks are registered."""
        return bool(self._hooks) or bool(self._sample_hooks)

    # -- stepping ------------------------------------------------------------------------------
    def sampling(self) -> bool:
        """Whether the current step is recorded."""
        s = self.current_step
        return s == 1 or (s > 0 and s % self.every == 0)

    def step(self) -> None:
        """Advance to the next step (automatic with ``auto_step=True``)."""
        if self.record_updates and self._previous_weights is not None:
            self._record_updates()
        self.current_step += 1
        self._calls.clear()
        if not self.sampling():
            self._sample_hooks.remove()
            return
        self._rows.setdefault(self.current_step, [])
        self._thin()
        if not self.sampling():  # thinning doubled the interval past this step
            self._sample_hooks.remove()
            return
        self._attach_measuring_hooks()
        if self.record_updates:
            self._previous_weights = {layer.name: layer.weight.detach().clone() for layer in self.weight_layers}
            self._previous_step = self.current_step

    def _on_root_forward(self, module: nn.Module, args) -> None:
        if torch.is_grad_enabled():
            self.step()

    def _thin(self) -> None:
        while len(self._rows) > self.max_samples:
            self.every *= 2
            for store in (self._rows, self._hists):
                for s in [s for s in store if s % self.every and s != 1]:
                    del store[s]

    # -- hooks ---------------------------------------------------------------------------------
    def _add(self, layer: _Layer, kind: str, values: dict[str, float], name: str | None = None) -> None:
        rows = self._rows.setdefault(self.current_step, [])
        name = name or layer.name
        rows.extend((self.current_step, name, layer.index, kind, q, v) for q, v in values.items())

    def _activation_hook(self, layer: _Layer) -> Callable:
        def hook(module: nn.Module, inputs, output) -> None:
            if not (self.sampling() and isinstance(output, torch.Tensor)):
                return
            if self.auto_step and not torch.is_grad_enabled():
                return  # an evaluation pass, not a training step
            calls = self._calls[layer.name] = self._calls.get(layer.name, 0) + 1
            name = layer.name if calls == 1 else f"{layer.name}#{calls}"  # one row per call site
            self._add(layer, "activation", activation_stats(module, output, combine=distributed()), name)
            low, high = self.hist_range or default_hist_range(module)
            out = output.detach().float().clamp(low, high)
            counts = torch.histc(out, bins=self.bins, min=low, max=high).cpu().numpy().astype(np.int64)
            self._hists.setdefault(self.current_step, []).append((name, layer.index, low, high, counts))

        return hook

    def _gradient_hook(self, layer: _Layer) -> Callable:
        def hook(grad: torch.Tensor) -> None:
            if not self.sampling():
                return
            g = grad.detach()
            norm, abs_sum, weight_norm = torch.stack([g.norm(), g.abs().sum(), layer.weight.detach().norm()]).tolist()
            self._add(layer, "weight", {"grad_norm": norm, "grad_abs_sum": abs_sum, "weight_norm": weight_norm})

        return hook

    def _record_updates(self) -> None:
        previous, step = self._previous_weights or {}, self._previous_step
        self._previous_weights = None
        if step not in self._rows:
            return
        for layer in self.weight_layers:
            w = layer.weight.detach()
            before = previous.get(layer.name)
            if before is None or before.shape != w.shape:
                continue
            ratio = update_ratio(before, w)
            self._rows[step].append((step, layer.name, layer.index, "weight", "update_ratio", ratio))

    # -- results -------------------------------------------------------------------------------
    def n_records(self) -> int:
        """Number of stored rows (statistics plus histograms); bounded by ``max_samples``."""
        return sum(len(r) for r in self._rows.values()) + sum(len(h) for h in self._hists.values())

    def to_frame(self) -> pd.DataFrame:
        """All statistics as a tidy DataFrame: step, layer, index, kind, quantity, value."""
        rows = [row for step in sorted(self._rows) for row in self._rows[step]]
        return pd.DataFrame(rows, columns=COLUMNS)

    def histograms(self) -> pd.DataFrame:
        """Histograms as a tidy DataFrame: step, layer, index, bin_left, bin_right, count, density."""
        frames = []
        for step in sorted(self._hists):
            for name, index, low, high, counts in self._hists[step]:
                edges = np.linspace(low, high, len(counts) + 1)
                total = max(int(counts.sum()), 1)
                frames.append(pd.DataFrame({
                    "step": step, "layer": name, "index": index, "bin_left": edges[:-1],
                    "bin_right": edges[1:], "count": counts, "density": counts / total,
                }))
        columns = ["step", "layer", "index", "bin_left", "bin_right", "count", "density"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


class preserved_state:
    """Context manager that restores a model's parameters, buffers, gradients and mode.

    Used by :func:`snapshot` so that measuring a model never changes it (BatchNorm
    running statistics included).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> nn.Module:
        self.state = copy.deepcopy(self.model.state_dict())
        self.grads = {n: None if p.grad is None else p.grad.clone() for n, p in self.model.named_parameters()}
        self.modes = {n: m.training for n, m in self.model.named_modules()}
        return self.model

    def __exit__(self, *exc) -> None:
        self.model.load_state_dict(self.state)
        for n, p in self.model.named_parameters():
            p.grad = self.grads[n]
        for n, m in self.model.named_modules():
            m.training = self.modes[n]


def snapshot(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    bins: int = 40,
    hist_range: tuple[float, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One forward (and, given targets ``y``, one backward) pass with a monitor attached.

    The model is left exactly as it was: parameters, buffers, gradients and the
    train/eval flag are restored. ``loss_fn`` defaults to cross-entropy. Returns
    ``(stats, histograms)`` as tidy DataFrames (see :class:`Monitor`).

    >>> from helpers.models import mlp
    >>> stats, hists = snapshot(mlp(8, 2, depth=3), torch.randn(64, 8), torch.randint(0, 2, (64,)))
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor batch, got {type(x).__name__}")
    loss_fn = loss_fn or nn.functional.cross_entropy
    with preserved_state(model), Monitor(model, every=1, updates=False, bins=bins, hist_range=hist_range) as mon:
        with torch.enable_grad():
            out = model(x)
            if y is not None:
                loss_fn(out, y).backward()
    return mon.to_frame(), mon.histograms()
