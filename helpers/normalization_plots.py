"""The normalization chapter's figures; each takes what :mod:`helpers.normalization` computed
and returns a :class:`matplotlib.figure.Figure`.

- :func:`axes_figure` — Wu & He (2018), Figure 2: which values each method normalizes together;
- :func:`trainable_map` — accuracy over learning rate × init scale, without and with BatchNorm;
- :func:`ioffe_figure` — Ioffe & Szegedy (2015), Figure 1: accuracy and a sigmoid's input percentiles;
- :func:`eval_mode_figure`, :func:`placement_figure`, :func:`error_by_workers_figure`,
  :func:`loss_figure`, :func:`loss_and_error_figure` — the chapter's other plots.

>>> fig = axes_figure(n=2, c=4, hw=2, groups=2)
>>> [ax.get_title() for ax in fig.axes]
['BatchNorm', 'LayerNorm', 'InstanceNorm', 'GroupNorm']
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from ._checks import check_int, check_number
from .plots import _require
from .train import FitResult

NORM_STYLES = {"BatchNorm": dict(color="C0"), "GroupNorm": dict(color="C1"), "LayerNorm": dict(color="C2"),
               "none": dict(color="0.35", ls="--")}


def readable_log_ticks(ax: plt.Axes) -> None:
    """Label a log y-axis at 1, 2 and 5 times each power of ten."""
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def axes_figure(n: int = 4, c: int = 6, hw: int = 4, groups: int = 3) -> plt.Figure:
    """Wu & He (2018), Figure 2: the values normalized together, for each method (one set shaded)."""
    for name, value in (("n", n), ("c", c), ("hw", hw), ("groups", groups)):
        check_int(name, value, minimum=1)
    n_idx, c_idx, _ = np.indices((n, c, hw))
    chosen = {"BatchNorm": c_idx == 0, "LayerNorm": n_idx == 0, "InstanceNorm": (n_idx == 0) & (c_idx == 0),
              "GroupNorm": (n_idx == 0) & (c_idx < c // groups)}
    fig = plt.figure(figsize=(7, 7))
    for i, (name, mask) in enumerate(chosen.items()):
        ax = fig.add_subplot(2, 2, i + 1, projection="3d")
        colors = np.where(mask, "#0173b2", "#e8e8e8")
        ax.voxels(np.ones((n, c, hw), bool), facecolors=colors, edgecolor="#666666", linewidth=0.4, shade=False)
        for axis, label in (("x", "N"), ("y", "C"), ("z", "H, W")):
            getattr(ax, f"set_{axis}label")(label, labelpad=-12, fontsize=13)
            getattr(ax, f"set_{axis}ticks")([])
        ax.set_title(name, fontsize=14)
        ax.view_init(elev=35, azim=-55)
        ax.set_box_aspect((n, c, hw))
    fig.subplots_adjust(wspace=0.0, hspace=0.12, left=0.0, right=1.0, bottom=0.02, top=0.95)
    return fig


def eval_mode_figure(forgot: pd.DataFrame, acc_eval: float) -> plt.Figure:
    """Test accuracy in training mode against the evaluation batch size, and in evaluation mode."""
    _require(forgot, ["evaluation batch", "accuracy"], "forgot")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(forgot["evaluation batch"], forgot.accuracy, "o-", label="training mode (eval() forgotten)")
    ax.axhline(acc_eval, color="k", ls="--", label="evaluation mode")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="evaluation batch size", ylabel="test accuracy", ylim=(0, 1.02),
           title="The same trained CNN, evaluated with and without model.eval()")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def trainable_map(grid: pd.DataFrame, threshold: float, title: str) -> plt.Figure:
    """Two heatmaps (without, with BatchNorm) of accuracy over init scale × learning rate;
    the cells at or above ``threshold`` outlined."""
    _require(grid, ["BatchNorm", "init scale", "learning rate", "accuracy"], "grid")
    check_number("threshold", threshold, minimum=0.0, maximum=1.0)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True, gridspec_kw={"width_ratios": [1, 1.2]})
    for ax, bn in zip(axes, [False, True]):
        table = grid[grid.BatchNorm == bn].pivot(index="init scale", columns="learning rate", values="accuracy")
        table = table.iloc[::-1]                      # largest init scale at the top
        sns.heatmap(table, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="viridis", cbar=bn, ax=ax,
                    annot_kws={"size": 9}, cbar_kws={"label": "accuracy"})
        for r, c in zip(*np.nonzero(table.to_numpy() >= threshold)):     # outline the cells that train
            ax.add_patch(plt.Rectangle((c + 0.04, r + 0.04), 0.92, 0.92, fill=False, ec="white", lw=1.5))
        ax.set_title("with BatchNorm" if bn else "without BatchNorm", fontsize=10)
        ax.tick_params(labelsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def loss_figure(result: FitResult, title: str, steps: int) -> plt.Figure:
    """Training loss per step (clipped at 10⁴), titled with how the run ended."""
    curve = result.curve("loss")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(curve.step, curve.value.clip(upper=1e4))
    ax.set(yscale="log", ylim=(1e-4, 1e4), xlim=(0, steps), xlabel="step", ylabel="training loss")
    state = f"diverged at step {result.diverged_step}" if result.status == "diverged" else \
        f"final accuracy {result.final('accuracy', 'train'):.2f}"
    ax.set_title(f"{title}: {state}")
    return fig


def loss_and_error_figure(result: FitResult, title: str) -> plt.Figure:
    """Training loss (smoothed over 10 steps) and test error per step, titled with the final error."""
    loss, acc = result.curve("loss"), result.curve("accuracy", "test")
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(loss.step, loss.value.rolling(10, min_periods=1).mean(), label="training loss (batch, smoothed)")
    ax.plot(acc.step, 1 - acc.value, "o-", ms=3, label="test error (evaluation mode)")
    ax.set(yscale="log", ylim=(0.005, 5), xlabel="step", ylabel="loss / error")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"{title}: test error {1 - result.final():.3f}")
    return fig


def ioffe_figure(plain: pd.DataFrame, batch: pd.DataFrame, unit: int = 0) -> plt.Figure:
    """(a) test accuracy of two :func:`~helpers.normalization.ioffe_run` runs; (b, c) the 15th,
    50th and 85th percentiles of one sigmoid's input, without and with BatchNorm."""
    fig = plt.figure(figsize=(7.5, 6.4))
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.15])
    ax_acc = top.subplots()
    for run, label in [(plain, "without BatchNorm"), (batch, "with BatchNorm")]:
        ax_acc.plot(run.step, run.accuracy, label=label)
    ax_acc.set(xlabel="step", ylabel="test accuracy", title="(a) test accuracy", ylim=(0, 1))
    ax_acc.legend(loc="center", bbox_to_anchor=(0.45, 0.55))    # the empty middle of the panel
    axes = bottom.subplots(1, 2, sharey=True)
    for ax, run, color, label in zip(axes, [plain, batch], ["C0", "C1"],
                                     ["(b) without BatchNorm", "(c) with BatchNorm"]):
        for col, style in [("p85", "--"), ("p50", "-"), ("p15", ":")]:
            ax.plot(run.step, np.stack(run[col])[:, unit], style, color=color, label=f"{col[1:]}th percentile")
        ax.set(xlabel="step", title=label)
    axes[0].set_ylabel(f"input to one sigmoid (unit {unit})")
    axes[0].legend(fontsize=9)
    top.subplots_adjust(left=0.11, right=0.97, bottom=0.2, top=0.88)
    bottom.subplots_adjust(left=0.11, right=0.97, bottom=0.14, top=0.9, wspace=0.08)
    return fig


def placement_figure(placement: pd.DataFrame) -> plt.Figure:
    """Training loss by activation and BatchNorm placement (bars: mean, whiskers: range of seeds)."""
    _require(placement, ["activation", "train loss", "BatchNorm"], "placement")
    fig, ax = plt.subplots(figsize=(6, 3.2))
    sns.barplot(data=placement, x="activation", y="train loss", hue="BatchNorm", ax=ax, errorbar=("pi", 100))
    ax.set_yscale("log")
    readable_log_ticks(ax)
    ax.set_ylabel("training loss after 150 steps")
    ax.set_title("BatchNorm before or after the activation (bars: mean, whiskers: range of 3 seeds)")
    fig.tight_layout()
    return fig


def error_by_workers_figure(sweep: pd.DataFrame) -> plt.Figure:
    """Test error against images per worker, one line per normalization (log–log)."""
    _require(sweep, ["normalization", "per worker", "test error"], "sweep")
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for label, rows in sweep.groupby("normalization", sort=False):
        ax.plot(rows["per worker"], rows["test error"], marker="o", ms=5, label=label, **NORM_STYLES.get(label, {}))
    ax.legend(title="normalization", fontsize=9, title_fontsize=10)
    ticks = sorted(sweep["per worker"].unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.set_yscale("log")
    readable_log_ticks(ax)
    ax.set(xlabel="images per worker (normalization batch)", ylabel="test error",
           title="Four-stage CNN on the digits: error against images per worker")
    fig.tight_layout()
    return fig
