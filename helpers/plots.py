"""The book's figures: one seaborn theme, each function takes a tidy DataFrame and
returns its :class:`matplotlib.figure.Figure`. No plotting code knows how a number
was produced.

- :func:`set_theme` — the book's look (called by :func:`helpers.setup`).
- :func:`histogram_grid` — per-layer activation histograms (chapters 0 and 2).
- :func:`layer_lines` — one statistic against layer index (chapters 0–2).
- :func:`training_curves` — a metric against step (chapters 0, 2, 3 and 4).
- :func:`glue_figure` — keep a chapter's key figure for the landing page.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
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
