"""The health report's rules: each problem, the threshold that raises it, where the threshold
comes from, and the chapter that explains it. The one place the report's judgement lives.

:func:`findings` turns the per-layer table that :func:`helpers.report` measures into a list
of :class:`Finding` objects; :data:`THRESHOLDS` holds every default with its reason.

>>> sorted(THRESHOLDS)[:2]
['dead_fraction', 'exploding_ratio']
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

PROBLEMS = ("dead", "saturated", "collapsed", "vanishing", "exploding", "update_small", "update_large")
#: The chapter that explains each problem, as (notebook, the name a message gives it).
#:
#: :meta hide-value:
CHAPTERS: dict[str, tuple[str, str]] = {
    "dead": ("04_dead_relu.ipynb", "the dead-ReLU chapter"),
    "saturated": ("02_initialization.ipynb", "the initialization chapter"),
    "collapsed": ("02_initialization.ipynb", "the initialization chapter"),
    "vanishing": ("01_vanishing_exploding.ipynb", "the vanishing/exploding-gradients chapter"),
    "exploding": ("01_vanishing_exploding.ipynb", "the vanishing/exploding-gradients chapter"),
    "update_small": ("01_vanishing_exploding.ipynb", "the vanishing/exploding-gradients chapter"),
    "update_large": ("03_normalization.ipynb", "the normalization chapter"),
}
HEALTHY_UPDATE_RATIO = 1e-3

#: Every threshold's default and where it comes from (the report's keyword arguments).
#:
#: :meta hide-value:
THRESHOLDS: dict[str, tuple[object, str]] = {
    "dead_fraction": (0.5, "more than half a layer's units silent for every example: the dead-ReLU chapter's "
                           "damaged nets sit above it, healthy ReLU nets far below (about 0-10 %)"),
    "saturated_fraction": (0.5, "more than half of a tanh/sigmoid layer's outputs in the flat tails "
                                "(Glorot & Bengio 2010 count |tanh| > 0.97)"),
    "min_example_std": (1e-3, "outputs that vary across examples by less than this pass (almost) nothing on, "
                              "for inputs of unit scale (Poole et al. 2016's ordered phase)"),
    "vanishing_ratio": (1e-2, "first layer's gradient RMS below 1/100 of the last layer's: two orders of "
                              "magnitude, the vanishing-gradients chapter's sigmoid nets"),
    "exploding_ratio": (1e2, "the mirror image: the first layer's gradient 100 × the last layer's"),
    "update_ratio_range": ((1e-5, 1e-1), "update / weight per step; about 1e-3 is healthy (Karpathy's "
                                         "CS231n notes), a 100-fold band on each side"),
}


@dataclass(frozen=True)
class Finding:
    """One flag raised by :func:`report`.

    ``problem`` is one of ``PROBLEMS``; ``value`` is the measured number that crossed
    ``threshold``; ``chapter`` is the notebook that explains the problem.
    """

    layer: str
    problem: str
    value: float
    threshold: float
    message: str
    chapter: str

    def __str__(self) -> str:
        return self.message


def _fmt(v: float) -> str:
    return f"{v:.2g}" if (v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e3)) else f"{v:.3g}"


def _finding(layer: str, problem: str, value: float, threshold: float, text: str) -> Finding:
    chapter, called = CHAPTERS[problem]
    return Finding(layer, problem, value, threshold, f"{layer}: {text} — see {called} ({chapter})", chapter)


def findings(
    layers: pd.DataFrame, t: dict, n_examples: int, non_finite: set[str], losses: list[float], has_target: bool
) -> list[Finding]:
    found: list[Finding] = []
    acts = layers[layers.kind == "activation"]
    weights = layers[layers.kind == "weight"]
    if has_target and not all(math.isfinite(v) for v in losses):
        found.append(_finding("loss", "exploding", float("inf"), float("inf"), "the loss is not finite"))
    bad = layers[layers.layer.isin(non_finite)]
    if len(bad):  # report where the non-finite values first appear
        found.append(_finding(bad.layer.iloc[0], "exploding", float("inf"), float("inf"),
                              "non-finite values (inf or NaN) in its outputs or gradient"))
    for row in acts.itertuples():
        if row.frac_dead > t["dead_fraction"]:
            found.append(_finding(row.layer, "dead", row.frac_dead, t["dead_fraction"],
                                  f"{100 * row.frac_dead:.0f} % of units dead over these {n_examples} examples"))
        if row.frac_saturated > t["saturated_fraction"]:
            found.append(_finding(row.layer, "saturated", row.frac_saturated, t["saturated_fraction"],
                                  f"{100 * row.frac_saturated:.0f} % of {row.module.lower()} outputs saturated"))
        if row.example_std < t["min_example_std"]:
            found.append(_finding(
                row.layer, "collapsed", row.example_std, t["min_example_std"],
                f"outputs barely vary across examples (std {_fmt(row.example_std)} < {t['min_example_std']:g}): "
                "the signal has collapsed"))
    # vanishing / exploding: the first weight layer's gradient RMS relative to the last one's;
    # exploding also when the gradient w.r.t. the outputs grows from the last activation layer
    # back to the first (forward growth can hide it from the weight gradients)
    ratios = {}
    for frame, column in ((weights, "grad_rms"), (acts, "act_grad_rms")):
        values = frame[column].to_numpy(dtype=float)
        usable = frame[np.isfinite(values) & (values > 0)]
        if len(usable) >= 2:
            first, last = usable.iloc[0], usable.iloc[-1]
            ratios[column] = (first.layer, last.layer, first[column] / last[column])
    if "grad_rms" in ratios:
        first, last, ratio = ratios["grad_rms"]
        if ratio < t["vanishing_ratio"]:
            found.append(_finding(first, "vanishing", ratio, t["vanishing_ratio"],
                                  f"its weight gradient (RMS) is {_fmt(ratio)} × that of the last layer ({last}): "
                                  "vanishing gradients"))
        elif ratio > t["exploding_ratio"]:
            found.append(_finding(first, "exploding", ratio, t["exploding_ratio"],
                                  f"its weight gradient (RMS) is {_fmt(ratio)} × that of the last layer ({last}): "
                                  "exploding gradients"))
    if "act_grad_rms" in ratios and "exploding" not in {f.problem for f in found}:
        first, last, ratio = ratios["act_grad_rms"]
        if ratio > t["exploding_ratio"]:
            found.append(_finding(first, "exploding", ratio, t["exploding_ratio"],
                                  f"the gradient reaching its outputs is {_fmt(ratio)} × that at the last "
                                  f"activation layer ({last}): exploding gradients"))
    low, high = t["update_ratio_range"]
    for row in weights.itertuples():
        if row.update_ratio < low:
            text = ("its gradient is exactly zero: it does not learn" if row.update_ratio == 0 else
                    f"one step would change its weights by {_fmt(row.update_ratio)} of their norm "
                    f"(healthy: about {HEALTHY_UPDATE_RATIO:g}); it barely learns")
            found.append(_finding(row.layer, "update_small", row.update_ratio, low, text))
        elif row.update_ratio > high:
            found.append(_finding(row.layer, "update_large", row.update_ratio, high,
                                  f"one step would change its weights by {_fmt(row.update_ratio)} of their norm "
                                  f"(healthy: about {HEALTHY_UPDATE_RATIO:g}); the learning rate is too large "
                                  "for it"))
    return found
