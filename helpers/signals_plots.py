"""The figures of the vanishing and exploding gradients chapter, from the frames of :mod:`helpers.signals`.

Each function takes what :mod:`helpers.signals` measured and returns its
:class:`matplotlib.figure.Figure`:

- :func:`plot_activations` — activations and their slopes;
- :func:`plot_profiles`, :func:`plot_flow` — per-layer gradient norms and backward signals;
- :func:`plot_layer_traces` — per-layer update ratios and mean outputs during training;
- :func:`plot_climb`, :func:`plot_loss` — a gradient sum climbing to ``nan``; a loss curve;
- :func:`plot_cliff`, :func:`plot_steps` — the one-unit recurrence's cliff and one clipped step on it.

>>> from helpers.signals import activation_curves
>>> fig = plot_activations(activation_curves(["tanh", "relu"]))
>>> len(fig.axes)
2
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator

from .plots import _require, layer_lines
from .train import FitResult

_STYLE = {"sigmoid": ("C0", "-", 2.0), "tanh": ("C1", "--", 2.0), "relu": ("C2", "-", 3.5),
          "leaky_relu": ("C4", ":", 2.0)}  # ReLU and leaky ReLU coincide for z > 0: both must stay visible


def plot_activations(curves: pd.DataFrame) -> plt.Figure:
    """Activations (left) and their derivatives (right), from :func:`helpers.signals.activation_curves`."""
    _require(curves, ["z", "activation", "value", "derivative"], "curves")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True)
    for name, c in curves.groupby("activation", sort=False):
        color, ls, lw = _STYLE.get(name, (None, "-", 2.0))
        axes[0].plot(c.z, c.value, color=color, ls=ls, lw=lw, label=name.replace("_", " "))
        axes[1].plot(c.z, c.derivative, color=color, ls=ls, lw=lw)
    axes[0].set(ylim=(-1.5, 3), xlabel="z", ylabel="φ(z)", title="activation")
    axes[1].set(xlabel="z", ylabel="φ′(z)", title="its derivative")
    axes[1].axhline(0.25, color="grey", ls=":", lw=1)
    axes[0].legend(title="activation", loc="upper left", fontsize=9, title_fontsize=9)
    fig.tight_layout()
    return fig


def _sizes(ax: plt.Axes, size: float) -> None:
    ax.title.set_size(size)
    ax.xaxis.label.set_size(size)
    ax.yaxis.label.set_size(size)
    ax.tick_params(labelsize=size - 1)


def plot_profiles(frame: pd.DataFrame, hue: str = "init") -> plt.Figure:
    """Weight gradient (left) and backward signal (right) per layer, one line per ``hue``, from
    :func:`helpers.signals.profiles`."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
    layer_lines(frame, "grad_norm", hue=hue, logy=True, ax=axes[0], xlabel="layer (11 = output)",
                title=r"weight gradient $\Vert\partial L/\partial W_l\Vert$")
    layer_lines(frame, "backward_signal", hue=hue, logy=True, ax=axes[1], xlabel="hidden layer",
                title=r"backward signal $\Vert\partial L/\partial a_l\Vert$")
    axes[0].set_ylabel("gradient norm")
    axes[1].set_ylabel("backward signal norm")
    axes[1].get_legend().remove()
    axes[0].legend(loc="lower right", bbox_to_anchor=(1, 0.12), fontsize=10, title=hue, title_fontsize=10)
    for ax in axes:
        _sizes(ax, 11)
    fig.tight_layout()
    return fig


def plot_flow(grads: pd.DataFrame, title: str, ylim: tuple[float, float] = (1e-18, 1e6)) -> plt.Figure:
    """One net's weight-gradient norm per layer (from :func:`helpers.signals.grad_norms`), for an explorer."""
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    last = int(grads["index"].max())
    layer_lines(grads, "grad_norm", ax=ax, logy=True, title=title, xlabel=f"layer (1 = first hidden, {last} = output)")
    ax.set_ylim(*ylim)
    ax.set_ylabel("gradient norm")
    _sizes(ax, 12)
    fig.tight_layout()
    return fig


def plot_layer_traces(stats: pd.DataFrame) -> plt.Figure:
    """Update-to-weight ratio (left) and mean activation (right) of every hidden layer against step,
    from a sigmoid net's ``Monitor.to_frame()``; colour runs from the first layer (dark) to the last."""
    _require(stats, ["step", "layer", "index", "quantity", "value"], "stats")
    hidden = stats[stats.layer.str.startswith("hidden")]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, quantity, legend in ((axes[0], "update_ratio", False), (axes[1], "act_mean", "full")):
        sns.lineplot(data=hidden[hidden.quantity == quantity], x="step", y="value", hue="index",
                     palette="viridis", ax=ax, legend=legend)
    axes[0].set(yscale="log", ylabel="‖ΔW‖ / ‖W‖ per step", title="update-to-weight ratio per layer")
    axes[1].set(ylabel="mean activation", ylim=(0, 1), title="mean sigmoid output per layer")
    axes[1].legend(title="hidden layer", ncol=2, fontsize=9, title_fontsize=10, bbox_to_anchor=(1.02, 1),
                   loc="upper left")  # outside: inside it would hide the top layer's fall from 0.5
    fig.tight_layout()
    return fig


def plot_climb(logs: Mapping[str, pd.Series]) -> plt.Figure:
    """Gradient sum per update against updates before the nan (each series' index), one line per run."""
    if not isinstance(logs, Mapping) or not all(isinstance(s, pd.Series) for s in logs.values()):
        raise TypeError("logs must map a run's label to a pandas Series of gradient sums")
    both = pd.concat([pd.DataFrame({"updates before nan": s.index, "gradient sum": s.to_numpy(), "run": label})
                      for label, s in logs.items()])
    fig, ax = plt.subplots(figsize=(7, 3.4))
    sns.lineplot(data=both, x="updates before nan", y="gradient sum", hue="run", marker="o", ax=ax)
    ax.set(yscale="log", ylabel="summed |gradient|", title="The gradient sum per update, until the loss is nan")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def plot_loss(run: FitResult, title: str, *, xmax: int | None = None, ylim: tuple[float, float] = (1e-7, 1e5)
              ) -> plt.Figure:
    """A run's batch loss against step (log scale, x up to ``xmax``), the step of a divergence marked."""
    curve = run.curve("loss")
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.plot(curve.step, curve.value, color="C0", lw=2)
    ax.set(yscale="log", xlim=(0, xmax or run.steps_run), ylim=ylim, xlabel="step", ylabel="training loss",
           title=f"{title}: {run.status}")
    if run.status == "diverged":
        ax.axvline(run.diverged_step, color="C3", ls="--")
        ax.text(run.diverged_step + 1, 1e2, f"nan at step {run.diverged_step}", color="C3", fontsize=11)
    _sizes(ax, 12)
    fig.tight_layout()
    return fig


def plot_steps(loss_fn: Callable, ws: torch.Tensor, bs: torch.Tensor, start: Sequence[float],
               steps: pd.DataFrame, *, stretch: float = 3.0) -> plt.Figure:
    """Contour of log₁₀ ``loss_fn(w, b)`` with arrows for the clipped rows of :func:`helpers.signals.clipped_steps`
    (drawn ``stretch`` times longer) and a note of where the unclipped step lands."""
    fig, ax = plt.subplots(figsize=(6, 4))
    contour = ax.contourf(ws, bs, np.log10(loss_fn(ws[None, :], bs[:, None]).numpy() + 1e-3), levels=20,
                          cmap="viridis")
    fig.colorbar(contour, ax=ax, label="log₁₀ loss")
    ax.plot(*start, "o", color="white", markeredgecolor="black")
    for (how, row), color in zip(steps.iloc[1:].iterrows(), ("black", "C3")):
        tip = (start[0] + stretch * row["Δw"], start[1] + stretch * row["Δb"])
        ax.annotate("", xy=tip, xytext=start, arrowprops=dict(arrowstyle="-|>", mutation_scale=15, color=color, lw=2))
        ax.plot([], [], color=color, lw=2, label=f"{how} (drawn {stretch:g}× longer)")
    raw = steps.iloc[0]
    ax.annotate(f"unclipped step lands at\n(w, b) = ({start[0] + raw['Δw']:.0f}, {start[1] + raw['Δb']:.0f})",
                xy=(float(ws[0]) + 0.1, float(bs[0]) + 0.1), color="black", fontsize=9,
                bbox=dict(boxstyle="round", facecolor="white", edgecolor="grey", alpha=0.9))
    ax.set(xlabel="w", ylabel="b", title="Loss surface of the one-unit recurrence: a straight wall")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_cliff(cliff: pd.DataFrame, *, title: str = "loss", ylabel: str = "loss") -> plt.Figure:
    """A loss (left) and its gradient ``|dL/db|`` (right, log scale) against ``b``: the columns of ``cliff``."""
    _require(cliff, ["b", "loss", "|dL/db|"], "cliff")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharex=True)
    sns.lineplot(data=cliff, x="b", y="loss", ax=axes[0])
    sns.lineplot(data=cliff, x="b", y="|dL/db|", ax=axes[1])
    axes[0].set(title=title, ylabel=ylabel)
    axes[1].set(title="gradient norm", yscale="log", ylabel="|∂L/∂b|")
    fig.tight_layout()
    return fig
