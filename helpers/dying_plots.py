"""The dead-ReLU chapter's figures: each takes tidy data (see :mod:`helpers.dying`) and returns a Figure.

- :func:`zero_and_dead` — per-batch zero share against the whole-set dead share, per setting;
- :func:`accuracy_vs_lr` — test accuracy against learning rate, per activation;
- :func:`phase_heatmaps` — dead share and accuracy over learning rate × input scale;
- :func:`watch_curves` — one run's whole-set shares (and loss) over training;
- :func:`neuron_loss` and :func:`weight_paths` — one ReLU neuron's loss and its weight's paths;
- :func:`output_histograms` — activation histograms, one panel per variant and layer;
- :func:`diary_log` — the debugging diary's summed ``|gradient|`` per step, one line per variant;
- :func:`born_dead` — P(dead at init) against depth, closed form and simulation;
- :func:`by_depth` — P(dead at init) against depth, one line per column (a bias kind, say);
- :func:`per_batch_vs_whole` — the dead share on one batch against the whole set;
- :func:`phase_run`, :func:`activation_run` — one :func:`helpers.dying.run`, as an explorer shows it.

>>> frame = pd.DataFrame({"w": [-1.0, 0.0, 1.0], "loss": [1.0, 0.5, 0.0], "neuron": "ReLU"})
>>> len(neuron_loss(frame).axes[0].lines)
2
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from . import dying, plots
from .plots import _require


def _legend_below(fig: plt.Figure, ax: plt.Axes, ncol: int, bottom: float) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, bottom, 1, 1))


def zero_and_dead(curves: pd.DataFrame) -> plt.Figure:
    """Left: the zero share of each batch (relu_rate); right: dead units on the whole set; one
    colour per ``setting`` (a :class:`~helpers.dying.DeadUnitWatch` frame with a ``setting`` column)."""
    _require(curves, ["step", "quantity", "value", "setting"], "curves")
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.4), sharey=True)
    sns.lineplot(curves[curves.quantity == "batch_zero"], x="step", y="value", hue="setting", ax=axes[0], lw=1,
                 legend=False)
    sns.lineplot(curves[curves.quantity == "dead"], x="step", y="value", hue="setting", ax=axes[1], marker=".")
    axes[0].set(ylabel="share", xlabel="training step")
    axes[0].set_title("relu_rate: zero share\nof each batch", fontsize=10)
    axes[1].set(xlabel="training step")
    axes[1].set_title("dead units, measured on\nthe whole training set", fontsize=10)
    _legend_below(fig, axes[1], 3, 0.09)
    return fig


def accuracy_vs_lr(frame: pd.DataFrame, lrs: Sequence[float], title: str) -> plt.Figure:
    """Test accuracy against learning rate (log scale), one line per ``activation``, band over seeds."""
    _require(frame, ["lr", "test accuracy", "activation"], "frame")
    fig, ax = plt.subplots(figsize=(6, 3.7))
    sns.lineplot(frame, x="lr", y="test accuracy", hue="activation", marker="o", errorbar=("pi", 100), ax=ax)
    ax.set(xscale="log", xlabel="learning rate (log scale)", ylabel="test accuracy after 100 steps", ylim=(0, 1),
           title=title)
    ax.set_xticks(lrs, labels=[f"{lr:g}" for lr in lrs])
    ax.minorticks_off()
    ax.legend(title=None, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=9, frameon=False)
    fig.tight_layout()
    return fig


def phase_heatmaps(phase: pd.DataFrame, scale: str = "top") -> plt.Figure:
    """Heatmaps of the ``dead`` share and the ``test accuracy`` over ``lr`` × the input ``scale`` column."""
    _require(phase, ["lr", scale, "dead", "test accuracy"], "phase")
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.3), sharey=True)
    for ax, what, cmap in zip(axes, ("dead", "test accuracy"), ("rocket_r", "mako")):
        grid = phase.pivot(index=scale, columns="lr", values=what).sort_index(ascending=False)
        sns.heatmap(grid, annot=True, fmt=".2f", vmin=0, vmax=1, cmap=cmap, ax=ax, cbar=False, annot_kws={"size": 9})
        ax.set(xlabel="learning rate", ylabel="")
        ax.set_title("share of dead units" if what == "dead" else what, fontsize=10)
    axes[0].set_ylabel("inputs scaled to [0, pixel max]")
    fig.suptitle("After 100 steps", fontsize=11)
    fig.tight_layout()
    return fig


def watch_curves(watch: pd.DataFrame, title: str, loss: pd.DataFrame | None = None) -> plt.Figure:
    """One run over training. Without ``loss``: the whole-set zero share and dead share (dashed, on
    top: they can coincide). With ``loss`` (a ``FitResult.curve("loss")``): the training loss (log
    scale) and the share of frozen units."""
    _require(watch, ["step", "quantity", "value"], "watch")
    if loss is None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for quantity, label, color, style in (("zero", "zero outputs (relu_rate)", "C1", "-"),
                                              ("dead", "dead units", "C0", "--")):
            d = watch[watch.quantity == quantity]
            ax.plot(d.step, d.value, color=color, ls=style, lw=2 if style == "--" else 1.5, marker=".", label=label)
        ax.set(ylim=(-0.03, 1.03), xlabel="training step", ylabel="share (whole training set)")
        ax.set_title(title, fontsize=10)
        ax.legend(title=None, loc="upper center", bbox_to_anchor=(0.5, -0.24), ncol=2, fontsize=9, frameon=False)
        fig.tight_layout()
        return fig
    fig, axes = plt.subplots(1, 2, figsize=(6.5, 3.0))
    axes[0].plot(loss.step, loss.value.clip(upper=1e6))
    axes[0].set(yscale="log", ylim=(1e-2, 1e6), xlabel="training step", ylabel="training loss (batch)", xlim=(0, 100))
    frozen = watch[watch.quantity == "frozen"]
    axes[1].plot(frozen.step, frozen.value, marker=".", color="C3")
    axes[1].set(ylim=(-0.03, 1.03), xlabel="training step", ylabel="share of frozen units (whole set)", xlim=(0, 100))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def neuron_loss(frame: pd.DataFrame) -> plt.Figure:
    """Loss against ``w``, one curve per ``neuron`` (dots for those whose name says "only")."""
    _require(frame, ["w", "loss", "neuron"], "frame")
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for i, (name, d) in enumerate(frame.groupby("neuron", sort=False)):
        ax.plot(d.w, d.loss, "o" if "only" in name else "-", ms=3.5, color=f"C{i}", label=name)
    ax.legend(fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set(xlabel="weight w", ylabel="mean squared error", title="Loss of one neuron fitted to ReLU(x)")
    fig.tight_layout()
    return fig


def weight_paths(paths: dict[str, object], starts: Sequence[float] = (-10.0, -1.0),
                 ylims: Sequence[tuple[float, float]] = ((-10.5, 2.5), (-1.2, 1.4)), dashed: str = "") -> plt.Figure:
    """The first seed's path of w (log step axis), one panel per start: ``paths`` maps an optimizer's
    name to a :func:`~helpers.dying.neuron_paths` path ``(steps + 1, len(starts), seeds)``."""
    fig, axes = plt.subplots(1, len(starts), figsize=(7, 3.6), squeeze=False)
    for j, (ax, start, ylim) in enumerate(zip(axes[0], starts, ylims)):
        for i, (name, p) in enumerate(paths.items()):
            dash = name == dashed  # a curve that nearly coincides with another one
            ax.plot(range(1, len(p)), p[1:, j, 0], color=f"C{i}", ls="--" if dash else "-", lw=2 if dash else 1.5,
                    label=name)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axhline(1, color="grey", lw=0.8, ls=":")
        ax.set(xscale="log", xlabel="step (log scale)", ylabel="weight w", ylim=ylim)
        ax.set_title(f"start w0 = {start:g}", fontsize=10)
    _legend_below(fig, axes[0, -1], 3, 0.13)
    return fig


def output_histograms(hists: pd.DataFrame, xlabel: str = "ReLU output") -> plt.Figure:
    """Log-count histograms (``Monitor.histograms()`` rows), rows of panels by ``variant``, columns by ``layer``."""
    _require(hists, ["variant", "layer", "bin_left", "bin_right", "count"], "hists")
    g = sns.FacetGrid(hists, row="variant", col="layer", height=2.2, aspect=1.3, sharey=True)
    g.map_dataframe(lambda data, **kw: plt.bar(data.bin_left, data["count"], width=data.bin_right - data.bin_left,
                                               align="edge", color="C0"))
    g.set(yscale="log", ylim=(0.5, None))
    g.set_axis_labels(xlabel, "count")
    g.set_titles("{row_name}: {col_name}", size=10)
    g.tick_params(labelsize=9)
    g.figure.tight_layout()
    return g.figure


def born_dead(frame: pd.DataFrame, every: int = 3) -> plt.Figure:
    """P(dead at init) against ``depth`` per ``width``: the ``closed form`` as lines, every
    ``every``-th ``simulated`` value as dots."""
    _require(frame, ["width", "depth", "simulated", "closed form"], "frame")
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for i, (n, d) in enumerate(frame.groupby("width")):
        ax.plot(d.depth, d["closed form"], color=f"C{i}", label=f"width {n}")
        ax.plot(d.depth[::every], d.simulated[::every], "o", color=f"C{i}", ms=3.5)
    ax.set(xlabel="depth (hidden layers)", ylabel="P(net is dead at init)",
           title="Born dead: closed form (lines) vs simulation (dots), no biases")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def diary_log(runs: dict, variants: Sequence[str], seed: int) -> plt.Figure:
    """The debugging diary's log: summed absolute gradient per step of each variant's ``seed`` run
    (``runs`` keyed ``(variant, seed)``), log scale."""
    history = pd.concat([runs[(v, seed)].history.assign(variant=v) for v in variants])
    return plots.training_curves(history, "grad_abs_sum", hue="variant", style="variant", logy=True,
                                 legend_outside=True, ylabel="summed |gradient|",
                                 title="The debugging diary's log, reproduced: summed absolute gradient "
                                       f"per step\n(full batch of 128, seed {seed})")


def by_depth(frame: pd.DataFrame, title: str) -> plt.Figure:
    """P(dead at init) against depth (``frame``'s index), one line per column."""
    ax = frame.plot(figsize=(6.5, 3.2), xlabel="depth (hidden layers)", ylabel="P(net is dead at init)", title=title)
    ax.figure.tight_layout()
    return ax.figure


def per_batch_vs_whole(per_batch: pd.DataFrame, whole: pd.DataFrame, title: str) -> plt.Figure:
    """Dead share per layer (columns) against step (index): one batch (dots) and the whole set (dashed)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for i, layer in enumerate(per_batch.columns):
        ax.plot(per_batch.index, per_batch[layer], color=f"C{i}", marker=".", lw=1.2,
                label=f"module {layer}: one batch of 64")
        ax.plot(whole.index, whole[layer], color=f"C{i}", ls="--", lw=1.2, label=f"module {layer}: whole training set")
    ax.set(xlabel="training step", ylabel="share of dead units")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=9, loc="upper left")
    fig.tight_layout()
    return fig


# -- explorer frames: train (memoized) and draw one run ---------------------------------------------
def phase_run(lr: float, pixel_max: float) -> plt.Figure:
    """:func:`watch_curves` of ``dying.run(lr=lr, top=pixel_max)``: whole-set dead and zero shares."""
    result, watch = dying.run(lr=lr, top=pixel_max)
    return watch_curves(watch, f"lr {lr:g}, pixels in [0, {pixel_max}]: test accuracy {result.final():.2f}")


def activation_run(activation: str, lr: float) -> plt.Figure:
    """:func:`watch_curves` of ``dying.run(activation, lr=lr)``: training loss and frozen units."""
    result, watch = dying.run(activation, lr=lr)
    note = f"final test accuracy {result.final():.2f}"
    if result.status == "diverged":
        note = f"diverged (loss not finite) at step {result.diverged_step}"
    return watch_curves(watch, f"{activation}, lr {lr:g}: {note}", loss=result.curve("loss"))
