"""The book's figures: one seaborn theme, each function takes a tidy DataFrame and
returns its :class:`matplotlib.figure.Figure`. No plotting code knows how a number
was produced.

- :func:`set_theme` — the book's look (called by :func:`helpers.session.setup`).
- :func:`histogram_grid` — per-layer activation histograms (chapters 0 and 2).
- :func:`layer_lines` — one statistic against layer index (chapters 0–2).
- :func:`training_curves` — a metric against step (chapters 0, 2, 3 and 4).
- :func:`glue_figure` — keep a chapter's key figure for the landing page.
- :func:`health_figure` — the health report's one-figure summary (chapter 5).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from ._checks import check_int

PALETTE = "colorblind"


def set_theme() -> None:
    """Apply the book's seaborn theme (white grid, colour-blind palette, readable sizes)."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook", rc={
        "figure.dpi": 100, "savefig.dpi": 100, "axes.titlesize": 11, "axes.labelsize": 10,
        "legend.fontsize": 9, "figure.autolayout": False,
    })


def _require(df: pd.DataFrame, columns: list[str], name: str = "df") -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}; it has {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{name} is empty: nothing to plot")


def histogram_grid(
    hists: pd.DataFrame,
    *,
    step: int | None = None,
    col_wrap: int = 5,
    height: float = 1.7,
    title: str | None = None,
    log: bool = False,
) -> plt.Figure:
    """One panel per layer with its activation histogram (from ``Monitor.histograms()``).

    ``step`` picks the sampled step (default: the last one). Panels are ordered by
    layer index and titled with the layer name.
    """
    _require(hists, ["step", "layer", "index", "bin_left", "bin_right", "density"], "hists")
    check_int("col_wrap", col_wrap, minimum=1)
    step = int(hists.step.max()) if step is None else step
    data = hists[hists.step == step]
    if data.empty:
        recorded = sorted(int(s) for s in hists.step.unique())
        raise ValueError(f"step={step} has no histograms; recorded steps: {recorded}")
    layers = data.drop_duplicates("index").sort_values("index")[["index", "layer"]].values.tolist()
    ncols = min(col_wrap, len(layers))
    nrows = math.ceil(len(layers) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * height * 1.25, nrows * height + 0.4),
                             sharex=True, sharey=True, squeeze=False)
    for ax, (index, layer) in zip(axes.flat, layers):
        d = data[data["index"] == index]
        ax.bar(d.bin_left, d.density, width=(d.bin_right - d.bin_left), align="edge", linewidth=0)
        ax.set_title(str(layer), fontsize=9)
        if log:
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(layers):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("activation")
    for ax in axes[:, 0]:
        ax.set_ylabel("share")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def layer_lines(
    stats: pd.DataFrame,
    quantity: str,
    *,
    hue: str | None = None,
    logy: bool = False,
    ax: plt.Axes | None = None,
    title: str | None = None,
    xlabel: str = "layer",
) -> plt.Figure:
    """A statistic against layer index, one line per ``hue`` group.

    ``stats`` is tidy (``index``, ``quantity``, ``value`` columns, as from
    ``Monitor.to_frame()``); rows of other quantities are ignored.
    """
    _require(stats, ["index", "quantity", "value"], "stats")
    data = stats[stats.quantity == quantity]
    if data.empty:
        raise ValueError(f"quantity={quantity!r} is not in stats; it has {sorted(stats.quantity.unique())}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.4))
    sns.lineplot(data=data, x="index", y="value", hue=hue, marker="o", ax=ax, errorbar=None)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(quantity.replace("_", " "))
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def training_curves(
    history: pd.DataFrame,
    metric: str = "loss",
    *,
    split: str = "train",
    hue: str | None = None,
    style: str | None = None,
    logy: bool = False,
    ylabel: str | None = None,
    legend_outside: bool = False,
    ax: plt.Axes | None = None,
    title: str | None = None,
) -> plt.Figure:
    """A metric against step (from ``FitResult.history``, or several stacked with a ``hue`` column).

    ``style`` (usually the ``hue`` column again) gives each curve its own dash pattern, so
    curves that lie on top of each other stay visible; ``legend_outside`` puts the legend to
    the right of the axes, where it cannot hide a curve.

    >>> from helpers.train import fit
    >>> from helpers.data import make_blobs
    >>> from helpers.models import mlp
    >>> run = fit(mlp(2, 4, depth=2, width=8), make_blobs(100), steps=10, progress=False)
    >>> fig = training_curves(run.history, "loss", logy=True)
    """
    _require(history, ["step", "split", "metric", "value"], "history")
    for name, column in (("hue", hue), ("style", style)):
        if column is not None and column not in history.columns:
            raise ValueError(f"{name}={column!r} is not a column of history; it has {list(history.columns)}")
    data = history[(history.metric == metric) & (history.split == split)]
    if data.empty:
        raise ValueError(f"no rows for metric={metric!r} on split={split!r}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.6) if legend_outside else (6, 3.4))
    sns.lineplot(data=data, x="step", y="value", hue=hue, style=style, ax=ax, errorbar=None)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel or f"{split} {metric.replace('_', ' ')}")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if legend_outside and ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


def glue_figure(name: str, fig: plt.Figure) -> None:
    """Keep ``fig`` under ``name`` for another page of the book (myst-nb's ``glue``).

    The landing page shows one figure of each chapter this way, pasted with
    ``{glue} name`` and ``:doc: chapters/<chapter>.ipynb``. Where myst-nb is not
    installed (Colab), nothing happens.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name={name!r} is not valid; use a Python identifier such as 'hero'")
    try:
        from myst_nb import glue
    except ImportError:
        return
    glue(name, fig, display=False)


# -- the health report's figure ----------------------------------------------------------------------
def short_name(layer: str, width: int = 14) -> str:
    """A layer name short enough for a tick label: ``hidden7`` → ``h7``, long paths keep their end.

    >>> short_name("hidden7"), short_name("stages.2.blocks.1.conv2")
    ('h7', '…locks.1.conv2')
    """
    name = layer.replace("hidden", "h")
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _positive(series: pd.Series) -> np.ndarray:
    values = series.to_numpy(dtype=float)
    return np.where(values > 0, values, np.nan)


def _mark(ax, frame: pd.DataFrame, column: str, problems: list[str], flagged: set, log: bool) -> None:
    """A red cross on each layer flagged with one of ``problems``."""
    xs = [i for i, name in enumerate(frame.layer) if any((name, p) in flagged for p in problems)]
    ys = frame[column].iloc[xs].to_numpy(dtype=float)
    ax.plot(xs, np.where(ys > 0, ys, np.nan) if log else ys, "x", color="red", markersize=9, mew=2, zorder=5)


def _log_panel(ax, series: pd.Series, style: str = "o-", **kw) -> None:
    """Plot positive values on a log scale; values of exactly 0 are marked at the bottom."""
    ax.plot(_positive(series), style, **kw)
    ax.set_yscale("log")
    xs = np.flatnonzero(series.to_numpy(dtype=float) == 0)
    if len(xs):
        ax.plot(xs, np.full(len(xs), 0.03), "v", color="gray", transform=ax.get_xaxis_transform(),
                label="exactly 0 (bottom)")


def _layer_axis(ax, frame: pd.DataFrame) -> None:
    ax.set_xlim(-0.5, len(frame) - 0.5)  # room for the end markers, even with two layers
    ax.set_xticks(range(len(frame)))
    if len(frame) <= 12:
        ax.set_xticklabels([short_name(n) for n in frame.layer], rotation=35, ha="right", fontsize=8)
    else:
        ax.set_xticks(range(0, len(frame), math.ceil(len(frame) / 10)))
        ax.set_xlabel("layer (execution order)")


def _activation_panels(axes, acts: pd.DataFrame, t: dict, flagged: set) -> None:
    ax = axes[0]
    if len(acts):
        _log_panel(ax, acts.act_std, label="std")
        ax.plot(_positive(acts.example_std), "s--", label="std across examples")
        ax.plot(_positive(acts.act_grad_rms), "^:", label="backward signal (gradient RMS)")
        ax.axhline(t["min_example_std"], color="gray", ls=":", lw=1, label="collapse threshold (std across examples)")
        _mark(ax, acts, "example_std", ["collapsed"], flagged, True)
        _mark(ax, acts, "act_grad_rms", ["exploding", "vanishing"], flagged, True)
        _layer_axis(ax, acts)
    ax.set(ylabel="std / gradient RMS")
    ax.set_title("Activations: spread and backward signal", fontsize=10)
    ax = axes[1]
    if len(acts):
        ax.plot(acts.frac_dead.to_numpy(dtype=float), "D-", color="C4", label="dead units")
        ax.plot(acts.frac_saturated.to_numpy(dtype=float), "v--", color="C5", label="saturated outputs")
        ax.axhline(t["dead_fraction"], color="gray", ls="--", lw=1, label="dead / saturated threshold")
        _mark(ax, acts, "frac_dead", ["dead"], flagged, False)
        _mark(ax, acts, "frac_saturated", ["saturated"], flagged, False)
        _layer_axis(ax, acts)
    ax.set(ylim=(-0.05, 1.05), ylabel="fraction")
    ax.set_title("Activations: dead and saturated", fontsize=10)


def _weight_panels(axes, weights: pd.DataFrame, t: dict, flagged: set, optimizer: str, lr: float) -> None:
    from .rules import HEALTHY_UPDATE_RATIO

    ax = axes[0]
    if len(weights):
        _log_panel(ax, weights.grad_rms)
        _mark(ax, weights, "grad_rms", ["vanishing", "exploding"], flagged, True)
        _layer_axis(ax, weights)
    ax.set(ylabel="weight-gradient RMS")
    ax.set_title("Gradients per weight layer", fontsize=10)
    ax = axes[1]
    if len(weights):
        ax.axhspan(*t["update_ratio_range"], color="green", alpha=0.08)
        ax.axhline(HEALTHY_UPDATE_RATIO, color="green", ls=":", lw=1)
        _log_panel(ax, weights.update_ratio)
        _mark(ax, weights, "update_ratio", ["update_small", "update_large"], flagged, True)
        _layer_axis(ax, weights)
    ax.set(ylabel=f"update ratio ({optimizer}, lr={lr:g})")
    ax.set_title("Update / weight per step", fontsize=10)


def health_figure(report, title: str | None = None) -> plt.Figure:
    """A one-figure summary of a :class:`helpers.health.HealthReport` (2 × 2 panels).

    Activation spread with the backward signal (the gradient RMS at each activation), dead
    and saturated shares, weight-gradient RMS and update ratio per layer, with the
    thresholds drawn and flagged layers marked by a red cross. Returns the Figure.
    """
    layers = report.layers
    acts = layers[layers.kind == "activation"].reset_index(drop=True)
    weights = layers[layers.kind == "weight"].reset_index(drop=True)
    flagged = {(f.layer, f.problem) for f in report.findings}
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.2))
    _activation_panels(axes[0], acts, report.thresholds, flagged)
    _weight_panels(axes[1], weights, report.thresholds, flagged, report.optimizer, report.lr)
    verdict = "no problem found" if report.ok else ", ".join(sorted(report.problems))
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
