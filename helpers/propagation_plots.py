"""The initialization chapter's figures: each takes tidy data (see :mod:`helpers.propagation`)
and returns a Figure.

- :func:`plot_measured_vs_predicted` — per-layer variance, measured against the theory;
- :func:`plot_median_loss` — training loss per step, the median over seeds, against chance;
- :func:`decade_ticks` — plain-number ticks at 1, 2 and 5 of each decade of a log axis;
- :func:`plot_singular_values` — histograms of the Jacobian's log singular values;
- :func:`plot_lsuv` — the variance of each layer after LSUV, per activation and batch;
- :func:`plot_transfer` — accuracy per setting and start, mean and range over seeds;
- :func:`activation_histograms` — the explorer's 2 × 5 grid of activation histograms.

>>> runs = pd.DataFrame({"n": [1, 1, 2, 2], "acc": [0.5, 0.6, 0.7, 0.8], "start": ["a", "b", "a", "b"]})
>>> plot_transfer(runs, "n", "acc", "start", "a title", chance=0.2).axes[0].get_title()
'a title'
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .plots import training_curves
from .propagation import explorer_outputs

CHANCE_10 = math.log(10)  # the cross-entropy of a uniform guess over ten classes


def plot_measured_vs_predicted(compare: pd.DataFrame, styles: Mapping[str, tuple[str, str, str]]) -> plt.Figure:
    """Left: predicted variance per layer (lines) and the mean measurement (markers) of each
    ``case``; right: every single draw's measured / predicted. ``styles``: case → (colour,
    line style, marker), in the order of the legend."""
    mean_measured = compare.groupby(["case", "layer"]).measured.mean()
    fig, (ax, ax_ratio) = plt.subplots(1, 2, figsize=(9.5, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    handles = []
    for case, (color, ls, marker) in styles.items():
        pred = compare[(compare.case == case) & (compare.seed == compare.seed.min())]
        ax.plot(pred.layer, pred.predicted, color=color, ls=ls, lw=1.5)
        ax.plot(mean_measured[case].index, mean_measured[case].to_numpy(), color=color, marker=marker,
                ls="none", markersize=6, markeredgecolor="white", markeredgewidth=0.5)
        handles.append(plt.Line2D([], [], color=color, ls=ls, marker=marker, label=case))
    ax.set(yscale="log", xlabel="layer", ylabel="variance of the layer's outputs",
           title=f"Measured (markers, mean of {compare.seed.nunique()} seeds)\nvs predicted (lines)")
    sns.stripplot(data=compare, y="case", x="ratio", hue="case", palette={c: v[0] for c, v in styles.items()},
                  ax=ax_ratio, size=3, legend=False, order=list(styles))
    ax_ratio.axvline(1, color="grey", lw=1)
    ax_ratio.set(xlabel="measured / predicted\n(each seed and layer)", ylabel="", title="Single draws")
    ax_ratio.tick_params(axis="y", labelsize=9)
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    return fig


def plot_median_loss(history: pd.DataFrame, hue: str, title: str, chance: float = CHANCE_10) -> plt.Figure:
    """Training loss per step, the median over the seeds of each ``hue`` group (one run's spike
    does not move it), with the loss of chance as a dotted line."""
    loss = history[history.metric == "loss"]
    median = loss.groupby([hue, "step", "split", "metric"], sort=False, as_index=False).value.median()
    fig = training_curves(median, "loss", hue=hue, title=title)
    fig.axes[0].axhline(chance, color="grey", ls=":", lw=1)
    label = "chance: ln 10" if chance == CHANCE_10 else f"chance: {chance:.3g}"
    fig.axes[0].annotate(label, (5, chance + 0.04), fontsize=8, color="grey")
    fig.tight_layout()
    return fig


def decade_ticks(ax: plt.Axes) -> None:
    """Label a log axis at 1, 2 and 5 of each decade, as plain numbers (``0.05``, not 5×10⁻²)."""
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_singular_values(sv: pd.DataFrame, depth: int) -> plt.Figure:
    """Histograms of ``log10 singular value`` per ``weights`` kind, one panel per ``net`` kind."""
    nets = list(dict.fromkeys(sv.net))
    fig, axes = plt.subplots(1, len(nets), figsize=(8.5, 3.6), sharey=True, squeeze=False)
    for ax, net_kind in zip(axes[0], nets):
        sns.histplot(data=sv[sv.net == net_kind], x="log10 singular value", hue="weights", ax=ax,
                     bins=np.arange(-12.125, 1.2, 0.25), element="step", stat="count", common_norm=False)
        ax.set_title(f"{net_kind} net, {depth} layers", fontsize=12)
        ax.set_xlabel("log₁₀ singular value of J", fontsize=11)
        ax.set_ylabel("count", fontsize=11)
        ax.tick_params(labelsize=10)
        sns.move_legend(ax, "upper left", fontsize=10, title_fontsize=10)
    fig.tight_layout()
    return fig


def plot_lsuv(lsuv: pd.DataFrame) -> plt.Figure:
    """The variance of each layer after LSUV (from :func:`helpers.propagation.lsuv_variances`), per
    activation and batch."""
    fig, ax = plt.subplots(figsize=(8.5, 3.4))
    sns.lineplot(data=lsuv, x="layer", y="variance", hue="activation", style="batch", ax=ax, lw=1.8,
                 palette=dict(zip(lsuv.activation.unique(), ["C0", "C2", "C4", "C3", "C1", "C5"])))
    ax.set(ylabel="variance of the linear output", title=f"{lsuv.layer.max()}-layer nets after LSUV")
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: the lines fill the axes
    fig.tight_layout()
    return fig


def plot_transfer(runs: pd.DataFrame, x: str, y: str, hue: str, title: str, chance: float) -> plt.Figure:
    """Mean of ``y`` per ``x`` and ``hue`` over the seeds (points), their range (bars), chance dotted."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    sns.pointplot(data=runs, x=x, y=y, hue=hue, ax=ax, dodge=0.2, errorbar=("pi", 100), linestyle="none",
                  markers="o")
    ax.axhline(chance, color="grey", ls=":", lw=1)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def activation_histograms(scheme: str, activation: str, depth: int, multiplier: str,
                          x: torch.Tensor) -> plt.Figure:
    """2 × 5 grid of activation histograms at ten layers of a fresh net (multiplier: "×1", "×0.5", ...)."""
    multiplier = float(multiplier.lstrip("×"))
    outs = explorer_outputs(scheme, activation, depth, multiplier, x)
    shown = np.unique(np.linspace(0, depth - 1, 10).round().astype(int))
    low, high = (-1.0, 1.0) if activation == "tanh" else (0.0, 3.0)
    fig, axes = plt.subplots(2, 5, figsize=(8, 3.2), sharex=True, sharey=True)
    for ax, i in zip(axes.flat, shown):
        values = outs[i][outs[i] > 0] if activation == "relu" else outs[i].flatten()
        counts, edges = np.histogram(values.clamp(low, high).numpy(), bins=31, range=(low, high))  # 0 mid-bin
        ax.stairs(counts / max(counts.sum(), 1), edges, fill=True)
        ax.text(0.5, 1.02, f"layer {i + 1}: {float(outs[i].std()):.2g}", transform=ax.transAxes,
                ha="center", va="bottom", fontsize=9)
        ax.grid(False)
        if ax is not axes[1, 0]:  # tick labels on one panel only: cheap to draw for every setting
            ax.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)
    axes[1, 0].set(xticks=[low, (low + high) / 2, high], ylabel="share",
                   xlabel="activation" + (" (> 0)" if activation == "relu" else ""))
    fig.suptitle(f"{scheme}, {activation}, {depth} layers, weights × {multiplier:g}\n"
                 "(panel titles: layer and std of its outputs)", fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.15, top=0.80, wspace=0.05, hspace=0.35)
    return fig
