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
- a list of :class:`helpers.rules.Finding` objects, plain-language flags such as
  ``"hidden7.act: 94 % of units dead over these 512 examples — see the dead-ReLU chapter"``,
  each raised by a threshold you can change (see :func:`report`), each pointing at the
  chapter that explains it.

In a notebook the report renders as a table plus its findings; :meth:`HealthReport.plot`
draws a one-figure summary (:func:`helpers.plots.health_figure`).

Used by chapter 5 (diagnose your own network). Its hooks are :class:`helpers.hooks.Hooks`,
its statistics :class:`helpers.stats.Moments`, its judgement :mod:`helpers.rules`, its input
coercion :mod:`helpers.inputs`; :class:`helpers.monitor.preserved_state` restores the model.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._checks import check_choice, check_int, check_number
from .collect import Collector, Loss, eval_gap, input_rms, run_passes, weight_row
from .inputs import as_batches
from .layers import behind, check_module, matrices, scaled_down
from .monitor import preserved_state
from .rules import PROBLEMS, Context, Finding, check_thresholds, explained, findings
from .train import OPTIMIZERS

MODES = ("train", "eval")
LAYER_COLUMNS = [
    "layer", "kind", "module", "index", "role", "behind", "act_mean", "act_std", "act_sq", "pre_mean", "pre_std",
    "example_std", "frac_zero", "frac_dead", "frac_saturated", "act_grad_rms", "grad_norm", "grad_rms",
    "weight_norm", "weight_scale", "update_ratio",
]
_FLOAT_COLUMNS = LAYER_COLUMNS[6:]
#: torch optimizers whose first step moves each weight by about ``lr`` (sign-like), like Adam's.
_ADAPTIVE = ("Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Adagrad", "RMSprop", "Adafactor")


@dataclass
class HealthReport:
    """What :func:`report` returns.

    Attributes:
        layers: one row per layer that ran, in execution order (columns ``LAYER_COLUMNS``):
            activation rows fill the ``act_*``/``frac_*``/``example_std`` columns (``act_grad_rms``
            is the RMS of the loss gradient with respect to the layer's outputs), weight rows the
            ``grad_*``/``weight_norm``/``update_ratio`` columns; the rest are NaN.
        findings: the flags raised, as a list of :class:`helpers.rules.Finding`.
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
        """The findings as a DataFrame: layer, problem, value, threshold, message, chapter, and the
        basis of the threshold (where it comes from)."""
        columns = ["layer", "problem", "value", "threshold", "message", "chapter", "basis"]
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
                f"{self.n_passes} pass{'es' if self.n_passes != 1 else ''}, loss {self.loss:.4g}")
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
        """A one-figure summary of the report: :func:`helpers.plots.health_figure`."""
        from .plots import health_figure

        return health_figure(self, title)


def _optimizer(optimizer, lr) -> tuple[str, float, list[str]]:
    """The family of the update rule ("sgd" or "adam"), its learning rate, and a note if guessed."""
    if isinstance(optimizer, torch.optim.Optimizer):
        family = "adam" if type(optimizer).__name__ in _ADAPTIVE else "sgd"
        lr = optimizer.param_groups[0]["lr"] if lr is None else lr
        return family, check_number("lr", float(lr), minimum=0.0, strict=True), []
    if optimizer is not None:
        check_choice("optimizer", optimizer, OPTIMIZERS)
    family = "adam" if optimizer in ("adam", "adamw") else "sgd"
    notes = []
    if lr is None:
        lr = 1e-3 if family == "adam" else 0.1
        notes.append(f"update ratios assume {'Adam' if family == 'adam' else 'SGD'} at lr {lr:g}: pass "
                     "optimizer=<your torch optimizer> (or its name and lr=) to judge the step you really take")
    return family, check_number("lr", lr, minimum=0.0, strict=True), notes


def _first_run(collector: Collector, module_name: str) -> int | None:
    """When a matrix's module first ran; for a module whose weight its parent uses directly
    (``nn.MultiheadAttention``'s ``out_proj``), when the nearest enclosing module did."""
    parts = module_name.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in collector.order:
            return collector.order[name]
    root = type(collector.model).__name__
    return collector.order.get(root)


def _layer_table(collector: Collector, mats: list, seen, family: str, lr: float, model: nn.Module) -> pd.DataFrame:
    """One row per activation call site and per trainable matrix that ran, in execution order."""
    rows = collector.activation_rows()
    scaled = scaled_down(model)
    zero_matrices = sum(f"{m.name}.weight" in scaled for m in mats)  # scalars (Fixup's biases) aside
    if zero_matrices > 0.6 * len(mats):  # most weights zero: a broken init, not zero-initialised branches
        scaled = []
    for m in mats:
        index = _first_run(collector, collector.names[m.module])
        if index is not None and seen.grads[m.name]:
            row = weight_row(m, index, seen, lr, family)
            if collector.names[m.module] in collector.normalized and not row["role"]:
                row["role"] = "normalized"
            rows.append({**row, "behind": behind(m.name, scaled)})
    layers = pd.DataFrame(rows, columns=LAYER_COLUMNS).sort_values("index", kind="stable").reset_index(drop=True)
    for column in _FLOAT_COLUMNS:
        layers[column] = layers[column].astype(float)
    return layers


def _coverage_notes(collector: Collector, mats: list, model: nn.Module, layers: pd.DataFrame, loss: Loss,
                    n_examples: int) -> list[str]:
    notes = []
    frozen = matrices(model, trainable=False)
    if frozen:
        notes.append(f"{len(frozen)} frozen weight matrices (requires_grad=False) not judged")
    unseen = [m.name for m in mats if m.name not in set(layers.layer)]
    if unseen:
        notes.append(f"{len(unseen)} weight matrices got no gradient from these passes (not used, or not reached): "
                     + ", ".join(unseen[:3]) + (" …" if len(unseen) > 3 else ""))
    if not collector.moments:
        notes.append("no nonlinearity ran (no activation module or functional activation): activation "
                     "statistics are missing")
    if loss.source == "random":
        notes.append("no targets given: gradients come from a random output gradient, so update ratios "
                     "and gradient sizes are indicative only")
    elif loss.source == "model":
        notes.append("the loss is the model's own (its output's .loss)")
    if n_examples < 2:
        notes.append("one example: the spread across examples (collapse) and dead units cannot be judged")
    return notes


def report(
    model: nn.Module,
    data,
    *,
    target: torch.Tensor | None = None,
    loss_fn: Callable | None = None,
    optimizer: str | torch.optim.Optimizer | None = None,
    lr: float | None = None,
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
    max_weight_scale: float = 4.0,
    init_loss_factor: float = 2.0,
    max_input_rms: float = 10.0,
    max_eval_gap: float = 0.5,
    normalized_update_factor: float = 10.0,
) -> HealthReport:
    """Diagnose ``model`` on ``data``: per-layer statistics and plain-language findings.

    Runs ``n_batches`` forward and backward passes of ``batch_size`` examples (a seeded
    random subset of ``data``), with no optimizer step, and leaves the model exactly as
    it was: parameters, buffers (BatchNorm running statistics), gradients, the train/eval
    flag of every submodule, hooks, and torch's global random state are restored. Works on
    any module tree: every call of a nonlinearity is a row (an activation module, a library's
    own activation class, a functional ``F.relu``/``torch.tanh``/``x.relu()`` inside a
    ``forward``, named ``<module>:<function>``; a module called twice gives ``name`` and
    ``name#2``), and so is every trainable parameter with two or more dimensions (linear,
    conv, attention, recurrent, embedding weights, Hugging Face's ``Conv1D``); rows are
    ordered by when they first run. What it could not see or did not judge is in ``notes``.
    Inside a ``torch.distributed`` group the statistics are combined over the ranks.

    Args:
        model: any ``nn.Module``.
        data: a tensor or NumPy batch (with ``target``, or none), an ``(x, y)`` pair, a
            multi-input batch ``((x1, x2), y)``, a dict of tensors (a tokenizer's output; with
            ``"labels"`` the model's own loss is used), a ``torch.utils.data.Dataset``, a
            ``DataLoader`` (its first ``n_batches`` batches), or a :class:`helpers.data.Dataset`
            (see :mod:`helpers.inputs`). The model's output may be a tensor, a tuple, a dict or
            an object with ``.logits``/``.loss``.
        target: labels for a tensor ``data``. Without targets (and without a loss of the
            model's own) the gradients come from a random (seeded, standard normal) output
            gradient: their *profile* across layers is meaningful, their size less so.
        loss_fn: ``loss_fn(logits, target)``; default cross-entropy for integer targets (over
            every position of a sequence), mean squared error for float targets (with a note).
        optimizer: the optimizer you train with — a ``torch.optim.Optimizer`` (its type and
            learning rate are read; Adam-like ones move each weight by about ``lr`` at the
            first step, so the ratio is ``lr·√(nnz g)/‖W‖``; SGD moves it by ``lr·g``, so
            ``lr·‖g‖/‖W‖``), or ``"sgd"``, ``"adam"``, ``"adamw"``. Without it, SGD at lr 0.1
            is assumed and a note says so.
        lr: the learning rate of that step (default: the optimizer's, else 0.1 for SGD and
            1e-3 for Adam).
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
            about 1e-3). Each threshold raises one kind of :class:`helpers.rules.Finding`; ``PROBLEMS``
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
    check_module("model", model)
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable(output, target) or None, got {loss_fn!r}")
    family, lr, notes = _optimizer(optimizer, lr)
    check_choice("mode", mode, MODES)
    check_int("seed", seed, minimum=0)
    thresholds = check_thresholds(dead_fraction, saturated_fraction, min_example_std, vanishing_ratio,
                                   exploding_ratio, update_ratio_range)
    for name, value in (("max_weight_scale", max_weight_scale), ("init_loss_factor", init_loss_factor),
                        ("max_input_rms", max_input_rms), ("max_eval_gap", max_eval_gap),
                        ("normalized_update_factor", normalized_update_factor)):
        thresholds[name] = check_number(name, value, minimum=0.0, strict=True)
    batches = as_batches(data, target, n_batches=check_int("n_batches", n_batches, minimum=1),
                         batch_size=check_int("batch_size", batch_size, minimum=1), seed=seed)
    if loss_fn is not None and batches[0].target is None:
        raise ValueError("loss_fn was given but there are no targets; pass target= or data=(x, y)")
    if batches[0].target is not None and batches[0].target.is_floating_point() and loss_fn is None:
        notes.append("float targets: the loss is the mean squared error; pass loss_fn= to choose another")
    mats, loss = matrices(model), Loss(model, loss_fn, seed)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    with preserved_state(model), torch.random.fork_rng(devices=[]):
        gap = eval_gap(model, batches[0], device) if mode == "train" else float("nan")  # before any pass
        model.train(mode == "train")
        for p in model.parameters():
            p.grad = None
        with Collector(model) as collector, torch.enable_grad():
            seen = run_passes(model, batches, mats, loss)
        collector.combine_ranks()
    layers = _layer_table(collector, mats, seen, family, lr, model)
    n_examples = sum(len(b) for b in batches)
    context = Context(n_examples, seen.losses, loss.source, loss.classes if loss_fn is None else 0,
                      input_rms(batches), gap, collector.non_finite | seen.non_finite, loss.probabilities)
    found = findings(layers, thresholds, context)
    notes += explained(layers, thresholds) + _coverage_notes(collector, mats, model, layers, loss, n_examples)
    mean_loss = float(np.mean(seen.losses)) if loss.source != "random" else float("nan")
    return HealthReport(layers, found, thresholds, n_examples, len(batches), lr, family, mean_loss, notes)
