"""The residual-and-transformer chapter's figures: each takes tidy data (see :mod:`helpers.residual`
and :mod:`helpers.transformer`) and returns a Figure.

- :func:`signal_through_depth` — backward signal per block and the block Jacobians' singular values;
- :func:`stream_growth` — the stream's mean square per block against its prediction, per branch;
- :func:`ffn_gradients` — Xiong et al.'s per-layer gradient at initialization, and its depth trend;
- :func:`loss_curves` — training loss per step, every seed thin and the median bold, per setting;
- :func:`adam_updates` — update-to-weight ratio per step, with and without warmup;
- :func:`depth_explorer` — one residual net's forward and backward profile, as the explorer shows it.

>>> frame = pd.DataFrame({"setting": "a", "seed": [0, 0, 1, 1], "step": [1, 2, 1, 2], "loss": [2.0, 1.0, 2.0, 1.5]})
>>> len(loss_curves(frame, ["a"], chance=2.5).axes[0].lines)
4
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .plots import _require
from .residual import predicted_stream_variance, signal_profiles


def _band(ax: plt.Axes, frame: pd.DataFrame, x: str, y: str, label: str, color, **line) -> None:
    """Median over seeds as a line, min–max over seeds as a band."""
    stats = frame.groupby(x)[y].agg(["median", "min", "max"])
    ax.plot(stats.index, stats["median"], color=color, label=label, **line)
    ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.2, linewidth=0)


def signal_through_depth(profiles: pd.DataFrame, spectra: pd.DataFrame, nets: Sequence[str]) -> plt.Figure:
    """Left: ``backward`` (the stream's gradient over the last block's) per block, per net; right:
    the singular values of one block's Jacobian, per net (all seeds pooled)."""
    _require(profiles, ["net", "seed", "block", "backward"], "profiles")
    _require(spectra, ["net", "singular_value"], "spectra")
    colors = sns.color_palette(n_colors=len(nets))
    fig, (ax, ax_sv) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for net, color in zip(nets, colors):
        _band(ax, profiles[profiles.net == net], "block", "backward", net, color, marker=".")
    ax.set(yscale="log", xlabel="block (0 = after the first layer)",
           ylabel="‖∂L/∂x‖ relative to the last block", title="Backward signal at initialization")
    ax.legend(fontsize=9)
    sns.stripplot(spectra, x="singular_value", y="net", order=list(nets), hue="net", hue_order=list(nets),
                  palette=colors, size=3, jitter=0.3, ax=ax_sv, legend=False)
    ax_sv.axvline(1.0, color="0.4", linestyle=":", linewidth=1)
    ax_sv.set(xlabel="singular value of one block's Jacobian", ylabel="", title="How a block maps a small change")
    ax_sv.set_yticks(range(len(nets)), [n.replace(" (", "\n(") for n in nets], fontsize=9)
    fig.tight_layout()
    return fig


def stream_growth(profiles: pd.DataFrame, branches: Sequence[str], depth: int) -> plt.Figure:
    """The stream's mean square over the stem's (``forward``) per block, median and range over seeds,
    per branch; the prediction :math:`2^l` of the plain branch dashed."""
    _require(profiles, ["net", "seed", "block", "forward"], "profiles")
    fig, ax = plt.subplots(figsize=(8.5, 4.4))
    for branch, color in zip(branches, sns.color_palette(n_colors=len(branches))):
        _band(ax, profiles[profiles.net == branch], "block", "forward", branch, color)
    ax.plot(range(depth + 1), predicted_stream_variance(depth, 1.0), "k--", linewidth=1,
            label="prediction for plain: 2 per block")
    ax.set(yscale="log", xlabel="block", ylabel="mean square of the stream / at the stem",
           title=f"Forward signal of a {depth}-block residual net at initialization (no normalization)")
    flat = [b for b in branches if b in ("zero", "rezero", "fixup")]
    if len(flat) > 1:
        ax.annotate(f"{', '.join(flat)}: exactly 1, on top of each other", (depth, 1.0), xytext=(0, 8),
                    textcoords="offset points", ha="right", va="bottom", fontsize=9)
    ax.legend(fontsize=9, loc="upper left", ncol=2)
    fig.tight_layout()
    return fig


def ffn_gradients(profiles: pd.DataFrame, depth: int) -> plt.Figure:
    """Left: each layer's ‖∂L/∂W₂‖ over the last layer's in a ``depth``-layer transformer, pre and
    post-LN (median and range over seeds); right: the last layer's ‖∂L/∂W₂‖ against depth."""
    _require(profiles, ["ln", "depth", "seed", "layer", "grad_norm", "relative"], "profiles")
    colors = dict(zip(("pre", "post"), sns.color_palette(n_colors=2)))
    fig, (ax, ax_depth) = plt.subplots(1, 2, figsize=(10, 4.2))
    for ln, color in colors.items():
        one = profiles[(profiles.ln == ln) & (profiles.depth == depth)]
        _band(ax, one, "layer", "relative", f"{ln}-LN", color, marker="o")
        last = profiles[(profiles.ln == ln) & (profiles.layer == profiles.depth)]
        _band(ax_depth, last, "depth", "grad_norm", f"{ln}-LN", color, marker="o")
    ax.axhline(1.0, color="0.4", linestyle=":", linewidth=1)
    ax.set(xlabel="layer (1 = nearest the input)", ylabel="‖∂L/∂W₂‖ relative to the last layer",
           title=f"{depth} layers at initialization: gradient by layer")
    ax_depth.set(xscale="log", xlabel="number of layers", ylabel="last layer's ‖∂L/∂W₂‖",
                 title="At initialization: the last layer's gradient")
    ax_depth.set_ylim(bottom=0)
    ax_depth.set_xticks(sorted(profiles.depth.unique()), [str(d) for d in sorted(profiles.depth.unique())])
    ax_depth.minorticks_off()
    for a in (ax, ax_depth):
        a.legend(fontsize=9)
    fig.tight_layout()
    return fig


def loss_curves(curves: pd.DataFrame, settings: Sequence[str], *, chance: float, title: str | None = None
                ) -> plt.Figure:
    """Training loss per step: one thin line per seed and the median over seeds bold, per setting;
    the loss of a uniform guess dotted."""
    _require(curves, ["setting", "seed", "step", "loss"], "curves")
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    for setting, color in zip(settings, sns.color_palette(n_colors=len(settings))):
        one = curves[curves.setting == setting]
        for _, seed in one.groupby("seed"):
            ax.plot(seed.step, seed.loss, color=color, linewidth=0.6, alpha=0.45)
        median = one.groupby("step").loss.median()
        ax.plot(median.index, median, color=color, linewidth=2.2, label=setting)
    ax.axhline(chance, color="0.3", linestyle=":", linewidth=1, label=f"uniform guess (ln {round(np.exp(chance))})")
    ax.set(xlabel="step", ylabel="training loss (batch)", title=title)
    ax.legend(fontsize=9, loc="lower left")
    fig.tight_layout()
    return fig


def adam_updates(updates: pd.DataFrame) -> plt.Figure:
    """``update_ratio`` per step for each ``run`` (median over layers, min–max band)."""
    _require(updates, ["run", "step", "layer", "update_ratio"], "updates")
    fig, ax = plt.subplots(figsize=(8.5, 4))
    runs = list(dict.fromkeys(updates.run))
    for run, color in zip(runs, sns.color_palette(n_colors=len(runs))):
        _band(ax, updates[updates.run == run], "step", "update_ratio", run, color, marker=".")
    ax.set(yscale="log", xlabel="step", ylabel="‖ΔW‖ / ‖W‖ per layer",
           title="Adam's first updates, relative to the weights (median and range over layers)")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1%}" if v < 0.01 else f"{v:.0%}"))
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def depth_explorer(depth: int, branch: str, *, width: int = 32, seeds: range = range(3)) -> plt.Figure:
    """The explorer: a ``depth``-block residual net with ``branch`` (He init, no norm): the
    stream's mean square (left) and backward signal (right) per block, median and range over seeds."""
    x = torch.randn(128, 16, generator=torch.Generator().manual_seed(0))
    y = torch.randint(10, (128,), generator=torch.Generator().manual_seed(1))
    net = dict(n_in=16, n_out=10, depth=depth, width=width, branch=branch)
    profiles = signal_profiles({branch: net}, x, y, seeds)
    fig, (ax_f, ax_b) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    _band(ax_f, profiles, "block", "forward", "measured", "C0", marker=".")
    if branch == "plain":
        ax_f.plot(range(depth + 1), predicted_stream_variance(depth, 1.0), "k--", linewidth=1, label="2 per block")
    ax_f.set(yscale="log", xlabel="block", ylabel="mean square / at the stem", title="Forward: the stream")
    _band(ax_b, profiles, "block", "backward", "measured", "C1", marker=".")
    ax_b.set(yscale="log", xlabel="block", ylabel="‖∂L/∂x‖ / at the last block", title="Backward: its gradient")
    for ax, column in ((ax_f, "forward"), (ax_b, "backward")):
        values = profiles[column][np.isfinite(profiles[column]) & (profiles[column] > 0)]
        ax.set_ylim(min(0.5, values.min() / 2), max(2.0, values.max() * 2))  # flat profiles stay readable
        ax.legend(fontsize=9)
    fig.suptitle(f"{depth} blocks, branch '{branch}'", fontsize=11)
    fig.tight_layout()
    return fig

