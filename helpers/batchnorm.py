r"""BatchNorm's running statistics: read them, replace them, recompute them, keep a second set.

A BatchNorm layer (Ioffe & Szegedy 2015) normalizes with the statistics of the current batch
in training mode and with running averages in evaluation mode. Each training-mode pass moves
the averages towards the batch's mean and (unbiased) variance:

.. math:: r \leftarrow (1 - m)\, r + m\, b,

with momentum :math:`m = 0.1` in PyTorch; Keras's default ``momentum=0.99`` is :math:`m = 0.01`
in this convention. Under a fast optimizer the weights move faster than a slow average follows,
and evaluation mode normalizes with the statistics of an older network: *stale statistics*.
The tools the diagnosis chapter uses to see it:

- :func:`bn_layers`, :func:`running_stats`, :func:`with_running_stats` — the BatchNorm layers of
  a model, their (mean, var) pairs, and a copy of the model that uses other ones;
- :func:`recalibrated` — a copy whose running statistics are the exact mean and unbiased
  variance of each layer's inputs over the data you give;
- :class:`RunningAverage` — a second running average beside PyTorch's, with its own momentum,
  kept during :func:`helpers.train.fit` as a callback;
- :func:`probe` — accuracy, and one module's activations (spread, per-channel ranges);
- :class:`ModeProbe` — a callback that probes the model after each epoch in four ways of
  evaluating BatchNorm; :func:`mode_summary` sums its records up, :func:`range_figure` and
  :func:`accuracy_figure` plot them.

>>> from helpers.senet import SENet
>>> net = SENet(n_blocks=1)
>>> [name for name, _ in bn_layers(net)]
['stem.1', 'blocks.0.bn1', 'blocks.0.bn2']
>>> x = torch.randn(64, 1, 8, 8)
>>> fresh = recalibrated(net, x)
>>> bool(torch.allclose(fresh.stem[1].running_mean, fresh.stem[0](x).mean((0, 2, 3)), atol=1e-6))
True
"""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from ._checks import check_int, check_number
from .hooks import Hooks, capture
from .inputs import as_split
from .layers import check_module
from .monitor import preserved_state
from .stats import per_unit, saturated
from .train import Callback, Run

BN_TYPES: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
Stats = list[tuple[torch.Tensor, torch.Tensor]]


def bn_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every BatchNorm layer of ``model`` that keeps running statistics."""
    check_module("model", model)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BN_TYPES) and m.running_mean is not None]


def running_stats(model: nn.Module) -> Stats:
    """A copy of each BatchNorm layer's ``(running_mean, running_var)``, in :func:`bn_layers` order."""
    return [(m.running_mean.clone(), m.running_var.clone()) for _, m in bn_layers(model)]


def with_running_stats(model: nn.Module, stats: Stats) -> nn.Module:
    """A copy of ``model`` whose BatchNorm layers use the given ``(mean, var)`` pairs.

    >>> net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    >>> with_running_stats(net, [(torch.ones(3), 4 * torch.ones(3))])[1].running_var.tolist()
    [4.0, 4.0, 4.0]
    """
    layers = bn_layers(model)
    if len(stats) != len(layers):
        raise ValueError(f"stats has {len(stats)} (mean, var) pairs but the model has {len(layers)} BatchNorm layers")
    model = copy.deepcopy(model)
    for (name, bn), (mean, var) in zip(bn_layers(model), stats):
        if mean.shape != bn.running_mean.shape or var.shape != bn.running_var.shape:
            raise ValueError(f"stats for {name} have shapes {tuple(mean.shape)}, {tuple(var.shape)}; "
                             f"the layer needs {tuple(bn.running_mean.shape)}")
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
    return model


@torch.no_grad()
def recalibrated(model: nn.Module, x: torch.Tensor, *, batch_size: int | None = None) -> nn.Module:
    r"""A copy of ``model`` whose running statistics are recomputed from the inputs ``x``.

    The model runs on ``x`` with its BatchNorm layers in training mode (everything else in
    evaluation mode), and each layer's running mean and variance become the exact mean and
    unbiased variance of its inputs over all of ``x`` — summed in float64 over chunks of
    ``batch_size`` (None: ``x`` in one pass). With one pass this equals PyTorch's own
    recipe (``reset_running_stats()``, ``momentum=None``, one training-mode pass); with
    chunks, a layer after the first sees inputs normalized with each chunk's statistics.
    The copy keeps the train/eval flags of ``model``; ``model`` is not changed.
    """
    check_module("model", model)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor batch of inputs, got {type(x).__name__}")
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=2)
    model = copy.deepcopy(model)
    modes = {name: m.training for name, m in model.named_modules()}
    sums: dict[nn.Module, list] = {}

    def accumulate(module: nn.Module, inputs: tuple) -> None:
        values = per_unit(inputs[0]).double()
        n, s, s2 = sums.get(module, (0, 0.0, 0.0))
        sums[module] = [n + values.shape[1], s + values.sum(1), s2 + values.pow(2).sum(1)]

    layers = [m for _, m in bn_layers(model)]
    model.eval()
    with Hooks() as hooks:
        for bn in layers:
            bn.train()
            hooks.forward_pre(bn, accumulate)
        for chunk in x.split(batch_size or len(x)):
            model(chunk)
    for bn in (bn for bn in layers if bn in sums):  # a layer that never ran keeps its statistics
        n, s, s2 = sums[bn]
        mean = s / n
        bn.running_mean.copy_(mean)
        bn.running_var.copy_((s2 - n * mean**2) / max(n - 1, 1))
    for name, m in model.named_modules():
        m.training = modes[name]
    return model


class RunningAverage(Callback):
    r"""A second running average of each BatchNorm layer's batch statistics, beside PyTorch's.

    At each training-mode forward pass with gradients on (a training step, not a probe under
    ``torch.no_grad``), for each layer: :math:`r \leftarrow (1 - m)\,r + m\,b`, :math:`b` the
    mean and unbiased variance of the layer's input over the batch, as PyTorch computes its
    own; it starts from the model's running statistics. ``momentum=0.01`` is Keras's default
    (``momentum=0.99`` in Keras's convention); with 0.1 it reproduces PyTorch's averages.

    Pass it to :func:`helpers.train.fit` in ``callbacks``, or use ``attach(model)`` and
    ``detach()`` (or ``with RunningAverage().attach(model) as average:``) around your own loop.
    Copies of the model (such as :meth:`applied` makes) do not update it.
    """

    def __init__(self, momentum: float = 0.01) -> None:
        self.momentum = check_number("momentum", momentum, minimum=0.0, maximum=1.0, strict=True)
        self.hooks = Hooks()
        self.stats: Stats = []

    def attach(self, model: nn.Module) -> RunningAverage:
        self.detach()
        layers = [m for _, m in bn_layers(model)]
        self.stats = running_stats(model)
        for k, bn in enumerate(layers):
            self.hooks.forward_pre(bn, self._update(k, bn))
        return self

    def __enter__(self) -> RunningAverage:
        return self

    def __exit__(self, *exc) -> None:
        self.detach()

    def detach(self) -> None:  # stop updating; the statistics stay
        self.hooks.remove()

    def _update(self, k: int, layer: nn.Module):
        def hook(module: nn.Module, inputs: tuple) -> None:
            if module is not layer or not module.training or not torch.is_grad_enabled():
                return
            values = per_unit(inputs[0])
            mean, var = self.stats[k]
            m = self.momentum
            self.stats[k] = ((1 - m) * mean + m * values.mean(1), (1 - m) * var + m * values.var(1))

        return hook

    def applied(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` whose BatchNorm layers use these averages."""
        return with_running_stats(model, self.stats)

    def on_fit_start(self, run: Run) -> None:
        self.attach(run.model)

    def on_fit_end(self, run: Run) -> None:
        self.detach()


def probe(model: nn.Module, data, watch: nn.Module | str, gate: nn.Module | str | None = None, *,
          train_mode: bool = False, n_images: int = 2) -> dict[str, object]:
    """Accuracy and one module's activations on the test split of ``data`` (or an ``(x, y)`` pair).

    Runs ``model`` once, in training mode (batch statistics) or evaluation mode, under
    ``torch.no_grad``, and leaves it as it was (BatchNorm's running statistics included).
    ``watch`` and ``gate`` are modules of ``model`` or their names. Returns ``accuracy``;
    ``std``, the std of ``watch``'s output over all examples, units and positions; ``min`` and
    ``max``, arrays ``(n_images, channels)`` of each channel's extremes over positions for the
    first ``n_images`` examples; ``gate_mean`` and ``gate_saturated`` (share of ``gate``'s
    outputs in a sigmoid's or tanh's flat tails, :func:`helpers.stats.saturated`), NaN without gate.
    """
    check_int("n_images", n_images, minimum=1)
    x_train, y_train, x_test, y_test = as_split(data)
    x, y = (x_train, y_train) if x_test is None else (x_test, y_test)
    named = {"act": watch} | ({"gate": gate} if gate is not None else {})
    modules = {k: model.get_submodule(m) if isinstance(m, str) else check_module(k, m) for k, m in named.items()}
    with preserved_state(model), capture(modules) as seen, torch.no_grad():
        model.train(bool(train_mode))
        out = model(x)
    act = seen["act"]
    ranges = act[:n_images].reshape(min(n_images, len(act)), act.shape[1], -1)
    g = seen.get("gate")
    mask = saturated(modules["gate"], g) if g is not None else None
    return {"accuracy": float((out.argmax(1) == y).float().mean()), "std": float(act.std()),
            "min": ranges.amin(2).numpy(), "max": ranges.amax(2).numpy(),
            "gate_mean": float(g.mean()) if g is not None else np.nan,
            "gate_saturated": float(mask.float().mean()) if mask is not None else np.nan}


TRAIN_MODE, RECALIBRATED = "train mode", "recalibrated"


class ModeProbe(Callback):
    """After each epoch, :func:`probe` the model in four ways of evaluating BatchNorm.

    The modes: ``"train mode"`` (batch statistics); ``"PyTorch m"`` (the model's own running
    averages, momentum ``m``); ``"Keras k"`` (a :class:`RunningAverage` of momentum ``k``, kept
    during the same run: training never reads it, so both describe the very same weights);
    ``"recalibrated"`` (:func:`recalibrated` on the training split). A model without BatchNorm
    is probed in train mode only. ``frame()`` gives one row per (epoch, mode).

    Args:
        data: a Dataset (probes on its test split, recalibrates on its training split).
        steps_per_epoch: probe after every this many steps (epoch = step // steps_per_epoch).
        watch, gate: what :func:`probe` reads, as names of the model's modules.
        momentum: of the second running average.
    """

    def __init__(self, data, steps_per_epoch: int, watch: str, gate: str | None = None, *,
                 momentum: float = 0.01) -> None:
        self.x_train = as_split(data)[0]
        self.data, self.watch, self.gate = data, watch, gate
        self.every = check_int("steps_per_epoch", steps_per_epoch, minimum=1)
        self.average = RunningAverage(momentum)
        self.records: list[dict] = []

    def modes(self, model: nn.Module) -> dict[str, tuple[nn.Module, bool]]:
        """Mode label → (model to probe, train_mode)."""
        layers = bn_layers(model)
        modes = {TRAIN_MODE: (model, True)}
        if layers:
            m = layers[0][1].momentum
            modes["PyTorch " + (f"{m:g}" if m is not None else "cumulative")] = (model, False)
            modes[f"Keras {self.average.momentum:g}"] = (self.average.applied(model), False)
            modes[RECALIBRATED] = (recalibrated(model, self.x_train), False)
        return modes

    def on_fit_start(self, run: Run) -> None:
        self.average.attach(run.model)

    def after_step(self, run: Run) -> None:
        if run.step % self.every:
            return
        for mode, (model, train_mode) in self.modes(run.model).items():
            found = probe(model, self.data, self.watch, self.gate, train_mode=train_mode)
            self.records.append({"epoch": run.step // self.every, "mode": mode, **found})

    def on_fit_end(self, run: Run) -> None:
        self.average.detach()

    def frame(self) -> pd.DataFrame:
        """The records: epoch, mode and :func:`probe`'s quantities."""
        return pd.DataFrame(self.records)


def mode_summary(log: pd.DataFrame, from_epoch: int = 6) -> pd.DataFrame:
    """Per mode of a :class:`ModeProbe` frame: the std at the last epoch over its largest,
    the accuracy at the last epoch, and the lowest accuracy from epoch ``from_epoch`` on.

    >>> log = pd.DataFrame({"epoch": [1, 2, 1, 2], "mode": ["a", "a", "b", "b"],
    ...                     "std": [2.0, 1.0, 1.0, 1.0], "accuracy": [0.5, 0.9, 0.4, 0.3]})
    >>> mode_summary(log, from_epoch=2).loc["a"].tolist()
    [0.5, 0.9, 0.9]
    """
    check_int("from_epoch", from_epoch, minimum=0)
    out = {}
    for mode, rows in log.groupby("mode", sort=False):
        out[mode] = {"std: last / max": rows["std"].iloc[-1] / rows["std"].max(),
                     "final accuracy": rows.accuracy.iloc[-1],
                     f"lowest, epochs {from_epoch}+": rows[rows.epoch >= from_epoch].accuracy.min()}
    return pd.DataFrame(out).T


def _range_panel(ax, rows: pd.DataFrame, title: str, image: int):
    epochs = rows.epoch.to_numpy()
    lows, highs = np.stack([m[image] for m in rows["min"]]), np.stack([m[image] for m in rows["max"]])
    for c in range(lows.shape[1]):
        ax.fill_between(epochs, lows[:, c], highs[:, c], alpha=0.12, color=f"C{c % 10}")
        ax.plot(epochs, highs[:, c], lw=0.8, color=f"C{c % 10}")
    ax.set_ylabel("channel min–max")
    twin = ax.twinx()
    twin.plot(epochs, rows["std"], "k--", lw=2)
    twin.set_ylabel("std over test set (dashed)")
    twin.grid(False)
    ax.set_title(title, fontsize=10)
    return twin


def range_figure(log: pd.DataFrame, panels: dict[str, str], *, image: int = 0, title: str | None = None):
    """One panel per mode (``panels``: mode → panel title) of a :class:`ModeProbe` frame: each
    channel's min–max band per epoch for test image ``image``, and the std over the test set
    (dashed, right axis); the panels share both axes' limits. Returns the figure."""
    if not panels:
        raise ValueError("panels is empty: name at least one mode")
    if set(panels) - set(log["mode"]):
        raise ValueError(f"panels names modes {sorted(panels)}; the log has {sorted(set(log['mode']))}")
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.5 * len(panels)), sharex=True, sharey=True,
                             squeeze=False)
    twins = [_range_panel(ax, log[log["mode"] == mode], panel, image)
             for ax, (mode, panel) in zip(axes[:, 0], panels.items())]
    top = max(tw.get_ylim()[1] for tw in twins)
    for tw in twins:
        tw.set_ylim(0, top)
    axes[-1, 0].set_xlabel("epoch")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


STYLES = [dict(color="C0", ls="-", marker="o"), dict(color="C1", ls="--", marker="s"),
          dict(color="C2", ls="-.", marker="^"), dict(color="black", ls=":", marker="D")]
LEGEND = {TRAIN_MODE: "train mode (batch statistics)", RECALIBRATED: "recalibrated averages"}


def accuracy_figure(logs: pd.DataFrame, title: str | None = None):
    """Test accuracy per epoch of each mode of :class:`ModeProbe` frames stacked with a ``seed``
    column: one thin line per seed, a thick line for the mean over seeds. Returns the figure."""
    fig, ax = plt.subplots(figsize=(8, 4.4))
    for k, (mode, rows) in enumerate(logs.groupby("mode", sort=False)):
        style = STYLES[k % len(STYLES)]
        mean = rows.groupby("epoch").accuracy.mean()
        ax.plot(mean.index, mean.values, ms=4, lw=1.8, label=LEGEND.get(mode, f"{mode} (running averages)"), **style)
        for _, r in rows.groupby("seed"):
            ax.plot(r.epoch, r.accuracy, lw=0.6, alpha=0.35, color=style["color"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    if title:
        ax.set_title(title, fontsize=11)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig
