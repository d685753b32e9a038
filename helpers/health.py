"""A health report for any ``nn.Module``: point it at a model and a batch of data, and it
says which of the book's pathologies the model shows, layer by layer.

:func:`report` runs a few forward and backward passes on the data you give it (no
optimizer step), restores the model exactly as it found it (parameters, buffers such as
BatchNorm's running statistics, gradients, the train/eval flag of every submodule, and
torch's global random state), and returns a :class:`HealthReport` with

- per activation module (after the nonlinearity): mean and std of the outputs, their
  spread across examples (``example_std``), the share of outputs exactly 0, the share of
  *dead* units (0 for every example given), the share of *saturated* outputs (tanh and
  sigmoid only);
- per ``Linear``/``Conv`` layer: gradient norm, gradient RMS (norm / √(number of
  weights)), weight norm and the update-to-weight ratio one optimizer step at ``lr``
  would make;
- a list of :class:`Finding` objects, plain-language flags such as
  ``"hidden7.act: 94 % of units dead over these 512 examples — see the dead-ReLU chapter"``,
  each raised by a threshold you can change (see :func:`report`), each pointing at the
  chapter that explains it.

In a notebook the report renders as a table plus its findings; :meth:`HealthReport.plot`
draws a one-figure summary. Also available as ``helpers.monitor.report``.

Used by chapter 5 (diagnose your own network); built on :class:`helpers.monitor.Monitor`
and :class:`helpers.monitor.preserved_state`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._checks import check_choice, check_int, check_number
from .inputs import as_batches
from .layers import ACTIVATION_TYPES, WEIGHT_TYPES
from .monitor import Monitor, preserved_state
from .rules import HEALTHY_UPDATE_RATIO, PROBLEMS, Finding, findings

OPTIMIZERS = ("sgd", "adam")
MODES = ("train", "eval")
LAYER_COLUMNS = [
    "layer", "kind", "module", "index", "act_mean", "act_std", "example_std", "frac_zero", "frac_dead",
    "frac_saturated", "act_grad_rms", "grad_norm", "grad_rms", "weight_norm", "update_ratio",
]


@dataclass
class HealthReport:
    """What :func:`report` returns.

    Attributes:
        layers: one row per layer that ran, in execution order (columns ``LAYER_COLUMNS``):
            activation rows fill the ``act_*``/``frac_*``/``example_std`` columns (``act_grad_rms``
            is the RMS of the loss gradient with respect to the layer's outputs), weight rows the
            ``grad_*``/``weight_norm``/``update_ratio`` columns; the rest are NaN.
        findings: the flags raised, as a list of :class:`Finding`.
        thresholds: the thresholds used, by keyword name.
        n_examples: examples seen.
        n_passes: forward passes made.
        loss: mean loss over the passes (NaN without targets).
        notes: caveats about this run (for example, gradients from random targets).
    """

    layers: pd.DataFrame
    findings: list[Finding]
    thresholds: dict[str, object]
    n_examples: int
    n_passes: int
    lr: float
    optimizer: str
    loss: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no finding was raised."""
        return not self.findings

    @property
    def problems(self) -> set[str]:
        """The set of problem codes raised (a subset of ``PROBLEMS``)."""
        return {f.problem for f in self.findings}

    def flagged(self, problem: str) -> list[str]:
        """The layers flagged with ``problem``, in execution order."""
        check_choice("problem", problem, PROBLEMS)
        return [f.layer for f in self.findings if f.problem == problem]

    def findings_frame(self) -> pd.DataFrame:
        """The findings as a DataFrame: layer, problem, value, threshold, message, chapter."""
        columns = ["layer", "problem", "value", "threshold", "message", "chapter"]
        return pd.DataFrame([[getattr(f, c) for c in columns] for f in self.findings], columns=columns)

    def summary(self) -> list[str]:
        """One line per problem: the flagged layers (grouped) and the worst value."""
        lines = []
        for problem in PROBLEMS:
            found = [f for f in self.findings if f.problem == problem]
            if not found:
                continue
            if len(found) == 1:
                lines.append(found[0].message)
                continue
            low = problem in ("collapsed", "vanishing", "update_small")
            worst = min(found, key=lambda f: f.value) if low else max(found, key=lambda f: f.value)
            names = [f.layer for f in found]
            shown = ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, …, {names[-1]}"
            lines.append(f"{len(found)} layers ({shown}); worst: {worst.message}")
        return lines

    def __str__(self) -> str:
        head = (f"HealthReport: {len(self.layers)} layers, {self.n_examples} examples, "
                f"{self.n_passes} passes, loss {self.loss:.4g}")
        body = self.summary() or ["no problem found"]
        return "\n".join([head, *("- " + line for line in body), *("note: " + n for n in self.notes)])

    def __repr__(self) -> str:
        return f"<HealthReport ok={self.ok} problems={sorted(self.problems)} layers={len(self.layers)}>"

    def _repr_html_(self) -> str:
        table = self.layers.drop(columns=["index"]).to_html(
            index=False, na_rep="", float_format=lambda v: f"{v:.3g}", border=0, classes="health-report"
        )
        if self.ok:
            verdict = "<p><b>No problem found.</b></p>"
        else:
            items = "".join(f"<li>{html.escape(line)}</li>" for line in self.summary())
            verdict = f"<p><b>{len(self.findings)} finding(s):</b></p><ul>{items}</ul>"
        notes = "".join(f"<p><i>Note: {html.escape(n)}</i></p>" for n in self.notes)
        head = (f"<p>Health report: {self.n_examples} examples, {self.n_passes} forward/backward passes, "
                f"update ratios for {self.optimizer} at lr={self.lr:g}.</p>")
        return f"<div>{head}{verdict}{notes}{table}</div>"

    def plot(self, title: str | None = None):
        """A one-figure summary (2 × 2 panels): activation spread with the backward signal
        (the gradient RMS at each activation), dead and saturated shares, weight-gradient RMS
        and update ratio per layer, with the thresholds drawn and flagged layers marked by a
        red cross. Returns the matplotlib Figure.
        """
        import matplotlib.pyplot as plt

        acts = self.layers[self.layers.kind == "activation"].reset_index(drop=True)
        weights = self.layers[self.layers.kind == "weight"].reset_index(drop=True)
        flagged = {(f.layer, f.problem) for f in self.findings}
        fig, axes = plt.subplots(2, 2, figsize=(9, 6.2))
        t = self.thresholds

        def mark(ax, frame, column, problems, log):
            xs = [i for i, name in enumerate(frame.layer) if any((name, p) in flagged for p in problems)]
            ys = frame[column].iloc[xs].to_numpy(dtype=float)
            if log:
                ys = np.where(ys > 0, ys, np.nan)
            ax.plot(xs, ys, "x", color="red", markersize=9, mew=2, zorder=5)

        def positive(series):
            values = series.to_numpy(dtype=float)
            return np.where(values > 0, values, np.nan)

        def zeros(ax, series):  # values of exactly 0 have no place on a log scale: mark them at the bottom
            xs = np.flatnonzero(series.to_numpy(dtype=float) == 0)
            if len(xs):
                ax.plot(xs, np.full(len(xs), 0.03), "v", color="gray", transform=ax.get_xaxis_transform(),
                        label="exactly 0 (bottom)")

        def axis_labels(ax, frame):
            ax.set_xlim(-0.5, len(frame) - 0.5)  # room for the end markers, even with two layers
            ax.set_xticks(range(len(frame)))
            if len(frame) <= 12:
                ax.set_xticklabels([short_name(n) for n in frame.layer], rotation=35, ha="right", fontsize=8)
            else:
                ax.set_xticks(range(0, len(frame), math.ceil(len(frame) / 10)))
                ax.set_xlabel("layer (execution order)")

        ax = axes[0, 0]
        if len(acts):
            ax.plot(positive(acts.act_std), "o-", label="std")
            ax.plot(positive(acts.example_std), "s--", label="std across examples")
            ax.plot(positive(acts.act_grad_rms), "^:", label="backward signal (gradient RMS)")
            ax.axhline(t["min_example_std"], color="gray", ls=":", lw=1,
                       label="collapse threshold (std across examples)")
            mark(ax, acts, "example_std", ["collapsed"], True)
            mark(ax, acts, "act_grad_rms", ["exploding", "vanishing"], True)
            ax.set_yscale("log")
            zeros(ax, acts.act_std)
            axis_labels(ax, acts)
        ax.set_ylabel("std / gradient RMS")
        ax.set_title("Activations: spread and backward signal", fontsize=10)

        ax = axes[0, 1]
        if len(acts):
            ax.plot(acts.frac_dead.to_numpy(dtype=float), "D-", color="C4", label="dead units")
            ax.plot(acts.frac_saturated.to_numpy(dtype=float), "v--", color="C5", label="saturated outputs")
            ax.axhline(t["dead_fraction"], color="gray", ls="--", lw=1, label="dead / saturated threshold")
            mark(ax, acts, "frac_dead", ["dead"], False)
            mark(ax, acts, "frac_saturated", ["saturated"], False)
            axis_labels(ax, acts)
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("fraction")
        ax.set_title("Activations: dead and saturated", fontsize=10)

        ax = axes[1, 0]
        if len(weights):
            ax.plot(positive(weights.grad_rms), "o-")
            mark(ax, weights, "grad_rms", ["vanishing", "exploding"], True)
            ax.set_yscale("log")
            zeros(ax, weights.grad_rms)
            axis_labels(ax, weights)
        ax.set_ylabel("weight-gradient RMS")
        ax.set_title("Gradients per weight layer", fontsize=10)

        ax = axes[1, 1]
        if len(weights):
            low, high = t["update_ratio_range"]
            ax.axhspan(low, high, color="green", alpha=0.08)
            ax.axhline(HEALTHY_UPDATE_RATIO, color="green", ls=":", lw=1)
            ax.plot(positive(weights.update_ratio), "o-")
            mark(ax, weights, "update_ratio", ["update_small", "update_large"], True)
            ax.set_yscale("log")
            zeros(ax, weights.update_ratio)
            axis_labels(ax, weights)
        ax.set_ylabel(f"update ratio ({self.optimizer}, lr={self.lr:g})")
        ax.set_title("Update / weight per step", fontsize=10)
        verdict = "no problem found" if self.ok else ", ".join(sorted(self.problems))
        fig.suptitle(title or f"Health report: {verdict}", fontsize=11)
        legend = {}  # one legend for all panels, below them, so that it never hides a point
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
        legend["flagged by the report"] = plt.Line2D([], [], color="red", marker="x", ls="", markersize=9, mew=2)
        fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=3, fontsize=8, frameon=False)
        # fixed margins (room for the rotated layer names and the legend): tight_layout would
        # cost a full extra draw, and the live explorer must redraw this figure within a second
        fig.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.21, hspace=0.72, wspace=0.3)
        return fig


# -- collecting ------------------------------------------------------------------------------------
class _UnitTracker:
    """Forward hooks that accumulate per-unit statistics over every pass, and the order in
    which layers first run. A unit is a feature (dim 1) or a conv channel."""

    def __init__(self, acts: list[tuple[str, nn.Module]], weights: list[tuple[str, nn.Module]]) -> None:
        self.acts, self.weights = acts, weights
        self.order: dict[str, int] = {}
        self.units: dict[str, dict[int, dict[str, torch.Tensor]]] = {}
        self.non_finite: set[str] = set()
        self.grad_sq: dict[str, list] = {}
        self._handles: list = []

    def __enter__(self) -> _UnitTracker:
        for name, module in self.acts:
            self._handles.append(module.register_forward_hook(self._act_hook(name)))
        for name, module in self.weights:
            self._handles.append(module.register_forward_hook(self._order_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _order_hook(self, name: str) -> Callable:
        def hook(module, inputs, output) -> None:
            self.order.setdefault(name, len(self.order) + 1)

        return hook

    def _act_hook(self, name: str) -> Callable:
        def hook(module, inputs, output) -> None:
            self.order.setdefault(name, len(self.order) + 1)
            if not isinstance(output, torch.Tensor) or output.ndim < 2:
                return
            if output.requires_grad:
                try:
                    output.register_hook(self._grad_hook(name))
                except RuntimeError:  # e.g. a view modified in place later; skip its gradient
                    pass
            out = output.detach().to(torch.float64)
            if not torch.isfinite(out).all():
                self.non_finite.add(name)
            flat = out.transpose(0, 1).reshape(out.shape[1], -1)
            per_size = self.units.setdefault(name, {})
            acc = per_size.get(flat.shape[0])
            stats = {
                "alive": (flat != 0).any(dim=1), "sum": flat.sum(dim=1), "sumsq": (flat * flat).sum(dim=1),
                "count": torch.tensor(float(flat.shape[1]), dtype=torch.float64),
            }
            if acc is None:
                per_size[flat.shape[0]] = stats
            else:
                acc["alive"] |= stats["alive"]
                for key in ("sum", "sumsq", "count"):
                    acc[key] += stats[key]

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

    def grad_rms(self, name: str) -> float:
        """RMS of the loss gradient with respect to the layer's outputs, over every pass."""
        sq, n = self.grad_sq.get(name, (0.0, 0))
        return math.sqrt(sq / n) if n else float("nan")

    def unit_stats(self, name: str) -> tuple[float, float]:
        """(fraction of dead units, std across examples averaged over live units)."""
        per_size = self.units.get(name)
        if not per_size:
            return float("nan"), float("nan")
        alive = torch.cat([acc["alive"] for acc in per_size.values()])
        variances = []
        for acc in per_size.values():
            mean = acc["sum"] / acc["count"]
            var = (acc["sumsq"] / acc["count"] - mean * mean).clamp_min(0.0)
            variances.append(var[acc["alive"]])
        var = torch.cat(variances)
        example_std = float(var.mean().sqrt()) if var.numel() else float("nan")
        return float((~alive).float().mean()), example_std


def short_name(layer: str, width: int = 14) -> str:
    """A layer name short enough for a tick label: ``hidden7`` → ``h7``, long paths keep their end.

    >>> short_name("hidden7"), short_name("stages.2.blocks.1.conv2")
    ('h7', '…locks.1.conv2')
    """
    name = layer.replace("hidden", "h")
    return name if len(name) <= width else "…" + name[-(width - 1):]


def report(
    model: nn.Module,
    data,
    *,
    target: torch.Tensor | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    lr: float = 0.1,
    optimizer: str = "sgd",
    n_batches: int = 2,
    batch_size: int = 256,
    mode: str = "train",
    seed: int = 0,
    dead_fraction: float = 0.5,
    saturated_fraction: float = 0.5,
    min_example_std: float = 1e-3,
    vanishing_ratio: float = 1e-2,
    exploding_ratio: float = 1e2,
    update_ratio_range: tuple[float, float] = (1e-5, 1e-1),
) -> HealthReport:
    """Diagnose ``model`` on ``data``: per-layer statistics and plain-language findings.

    Runs ``n_batches`` forward and backward passes of ``batch_size`` examples (a seeded
    random subset of ``data``), with no optimizer step, and leaves the model exactly as
    it was: parameters, buffers (BatchNorm running statistics), gradients, the train/eval
    flag of every submodule, and torch's global random state are restored. Works on any
    module tree: activations are read from activation *modules* (``nn.ReLU``, ``nn.Tanh``,
    …; a functional ``F.relu`` inside ``forward`` is invisible), weights from ``Linear`` and
    ``Conv`` layers; layers are ordered by when they first run.

    Args:
        model: any ``nn.Module`` whose output goes to ``loss_fn``.
        data: a tensor batch (with ``target``, or none), an ``(x, y)`` pair of tensors, or a
            :class:`helpers.data.Dataset` (its training split).
        target: labels for a tensor ``data``. Without targets the gradients come from a
            random (seeded, standard normal) output gradient: their *profile* across layers
            is meaningful, their absolute size and the update ratios less so.
        loss_fn: ``loss_fn(output, target)``; default cross-entropy for integer targets,
            mean squared error for float targets.
        lr: the learning rate of the step the update ratio is computed for.
        optimizer: ``"sgd"``: the update is ``lr·g``, so the ratio is ``lr·‖g‖/‖W‖``;
            ``"adam"``: Adam's first step moves every weight with a non-zero gradient by
            ``lr``, so the ratio is ``lr·√(nnz g)/‖W‖``.
        n_batches: cost control — at most this many forward/backward passes.
        batch_size: examples per pass (fewer if ``data`` is smaller).
        mode: run the model in ``"train"`` mode (BatchNorm uses batch statistics, dropout is on:
            what training sees) or ``"eval"`` mode.
        seed: seeds the choice of examples and the random targets.

    Keyword Args:
        dead_fraction: (default 0.5) flag ``"dead"`` when more than this share of a layer's
            units output exactly 0 for every example given.
        saturated_fraction: (default 0.5) flag ``"saturated"`` when more than this share of a
            tanh or sigmoid layer's outputs sit in the flat tails (``|tanh| > 0.97``, sigmoid
            outside [0.03, 0.97]).
        min_example_std: (default 0.001) flag ``"collapsed"`` when the live units' outputs vary
            across examples by less than this standard deviation: the layer passes (almost)
            nothing about its input on. Assumes inputs of roughly unit scale.
        vanishing_ratio: (default 0.01) flag ``"vanishing"`` when the gradient RMS
            (norm / √weights) of the first weight layer to run is below this multiple of the
            last one's.
        exploding_ratio: (default 100) flag ``"exploding"`` when that ratio is above this; or
            when the backward signal — the RMS of the loss gradient with respect to a layer's
            outputs (``act_grad_rms``) — at the first activation layer is above this multiple
            of the one at the last activation layer (with too large an init, activations grow
            forward as fast as this signal grows backward, and the weight gradients can look
            even); or when the loss, an activation or a gradient is not finite.
        update_ratio_range: (default (1e-5, 0.1)) flag ``"update_small"`` or ``"update_large"``
            when a layer's update-to-weight ratio falls outside this range (a healthy one is
            about 1e-3). Each threshold raises one kind of :class:`Finding`; ``PROBLEMS``
            lists the codes.

    Returns:
        a :class:`HealthReport` (``.layers``, ``.findings``, ``.ok``, ``.plot()``).

    >>> from helpers.models import mlp
    >>> _ = torch.manual_seed(0)
    >>> net = mlp(64, 10, depth=3, width=32)
    >>> x, y = torch.randn(128, 64), torch.randint(0, 10, (128,))
    >>> rep = report(net, (x, y), lr=0.05)
    >>> rep.ok, rep.n_passes
    (True, 1)
    >>> list(rep.layers.layer[:3])
    ['hidden1.linear', 'hidden1.act', 'hidden2.linear']
    >>> with torch.no_grad():
    ...     _ = net.hidden1.linear.bias.fill_(-100.0)  # kill every unit of the first layer
    >>> print(report(net, (x, y)).findings[0])
    hidden1.act: 100 % of units dead over these 128 examples — see the dead-ReLU chapter (04_dead_relu.ipynb)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable(output, target) or None, got {loss_fn!r}")
    lr = check_number("lr", lr, minimum=0.0, strict=True)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_int("n_batches", n_batches, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_choice("mode", mode, MODES)
    check_int("seed", seed, minimum=0)
    check_number("dead_fraction", dead_fraction, minimum=0.0, maximum=1.0)
    check_number("saturated_fraction", saturated_fraction, minimum=0.0, maximum=1.0)
    check_number("min_example_std", min_example_std, minimum=0.0)
    check_number("vanishing_ratio", vanishing_ratio, minimum=0.0, strict=True)
    check_number("exploding_ratio", exploding_ratio, minimum=0.0, strict=True)
    if vanishing_ratio >= exploding_ratio:
        raise ValueError(f"vanishing_ratio={vanishing_ratio!r} must be below exploding_ratio={exploding_ratio!r}")
    if not (isinstance(update_ratio_range, (tuple, list)) and len(update_ratio_range) == 2):
        raise TypeError(f"update_ratio_range must be a (low, high) pair, got {update_ratio_range!r}")
    low = check_number("update_ratio_range[0]", update_ratio_range[0], minimum=0.0)
    high = check_number("update_ratio_range[1]", update_ratio_range[1], minimum=0.0)
    if not low < high:
        raise ValueError(f"update_ratio_range={update_ratio_range!r} is not valid; give (low, high) with low < high")
    batches = as_batches(data, target, n_batches=n_batches, batch_size=batch_size, seed=seed)
    has_target = batches[0][1] is not None
    if loss_fn is not None and not has_target:
        raise ValueError("loss_fn was given but there are no targets; pass target= or data=(x, y)")
    if loss_fn is None and has_target:
        loss_fn = nn.functional.mse_loss if batches[0][1].is_floating_point() else nn.functional.cross_entropy
    thresholds = {
        "dead_fraction": dead_fraction, "saturated_fraction": saturated_fraction,
        "min_example_std": min_example_std, "vanishing_ratio": vanishing_ratio,
        "exploding_ratio": exploding_ratio, "update_ratio_range": (low, high),
    }

    named = [(n or type(m).__name__, m) for n, m in model.named_modules()]
    acts = [(n, m) for n, m in named if isinstance(m, ACTIVATION_TYPES)]
    weights = [(n, m) for n, m in named if isinstance(m, WEIGHT_TYPES)]
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    grads: dict[str, list[float]] = {n: [] for n, _ in weights}
    nnz: dict[str, list[float]] = {n: [] for n, _ in weights}
    losses: list[float] = []
    non_finite_grads: set[str] = set()
    passes = 0
    noise = torch.Generator().manual_seed(seed + 1)

    with preserved_state(model), torch.random.fork_rng(devices=[]):
        model.train(mode == "train")
        for p in model.parameters():
            p.grad = None
        monitor = Monitor(model, every=1, gradients=False, updates=False, bins=1)
        with monitor, _UnitTracker(acts, weights) as tracker, torch.enable_grad():
            for xb, yb in batches:
                out = model(xb.to(device))
                passes += 1
                if has_target:
                    loss = loss_fn(out, yb.to(device))
                else:
                    if not isinstance(out, torch.Tensor):
                        raise TypeError(f"model output is a {type(out).__name__}; give targets and a loss_fn for it")
                    cotangent = torch.randn(out.shape, generator=noise).to(out.device, out.dtype)
                    loss = (out * cotangent).sum() / max(len(out), 1)
                losses.append(float(loss.detach()) if has_target else float("nan"))
                if loss.requires_grad:
                    loss.backward()
                for name, module in weights:
                    g = module.weight.grad
                    if g is None:
                        continue
                    norm = float(g.detach().norm())
                    if not math.isfinite(norm):
                        non_finite_grads.add(name)
                    grads[name].append(norm)
                    nnz[name].append(float((g != 0).sum()))
                model.zero_grad(set_to_none=True)
        stats = monitor.to_frame()

    act_means = stats.groupby(["layer", "quantity"]).value.mean().unstack() if len(stats) else pd.DataFrame()
    rows = []
    for name, module in acts:
        if name not in tracker.order:
            continue
        frac_dead, example_std = tracker.unit_stats(name)
        row = dict(layer=name, kind="activation", module=type(module).__name__, index=tracker.order[name],
                   frac_dead=frac_dead, example_std=example_std, act_grad_rms=tracker.grad_rms(name))
        for q in ("act_mean", "act_std", "frac_zero", "frac_saturated"):
            row[q] = float(act_means.loc[name, q]) if name in act_means.index else float("nan")
        rows.append(row)
    for name, module in weights:
        if name not in tracker.order:
            continue
        w = module.weight.detach()
        weight_norm = float(w.norm())
        norm = float(np.mean(grads[name])) if grads[name] else float("nan")
        if optimizer == "sgd":
            step = lr * norm
        else:
            step = lr * math.sqrt(float(np.mean(nnz[name]))) if nnz[name] else float("nan")
        rows.append(dict(
            layer=name, kind="weight", module=type(module).__name__, index=tracker.order[name],
            grad_norm=norm, grad_rms=norm / math.sqrt(max(w.numel(), 1)), weight_norm=weight_norm,
            update_ratio=step / weight_norm if weight_norm > 0 else float("inf"),
        ))
    layers = pd.DataFrame(rows, columns=LAYER_COLUMNS).sort_values("index").reset_index(drop=True)
    for column in LAYER_COLUMNS[4:]:
        layers[column] = layers[column].astype(float)

    n_examples = sum(len(xb) for xb, _ in batches)
    found = findings(layers, thresholds, n_examples, tracker.non_finite | non_finite_grads, losses, has_target)
    notes = []
    if not has_target:
        notes.append("no targets given: gradients come from a random output gradient, so update ratios "
                     "and gradient sizes are indicative only")
    if not acts:
        notes.append("no activation modules found (functional activations are not seen): "
                     "activation statistics are missing")
    mean_loss = float(np.mean(losses)) if has_target else float("nan")
    return HealthReport(layers, found, thresholds, n_examples, passes, lr, optimizer, mean_loss, notes)


