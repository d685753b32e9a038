"""The health report's rules: each problem, the threshold that raises it, where the threshold
comes from, and the chapter that explains it. The one place the report's judgement lives.

:func:`findings` turns the per-layer table that :func:`helpers.health.report` measures into a list
of :class:`Finding` objects; :data:`THRESHOLDS` holds every default with its reason.

>>> sorted(THRESHOLDS)[:2]
['dead_fraction', 'exploding_ratio']
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .text import number

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
    """One flag raised by :func:`helpers.health.report`.

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


def _finding(layer: str, problem: str, value: float, threshold: float, text: str) -> Finding:
    chapter, called = CHAPTERS[problem]
    return Finding(layer, problem, value, threshold, f"{layer}: {text} — see {called} ({chapter})", chapter)


def _activation_findings(acts: pd.DataFrame, t: dict, n_examples: int) -> list[Finding]:
    """dead, saturated and collapsed, layer by layer."""
    found = []
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
                f"outputs barely vary across examples (std {number(row.example_std)} < {t['min_example_std']:g}): "
                "the signal has collapsed"))
    return found


def _first_to_last(frame: pd.DataFrame, column: str) -> tuple[str, str, float] | None:
    """(first layer, last layer, first / last) over the layers with a finite, positive value."""
    values = frame[column].to_numpy(dtype=float)
    usable = frame[np.isfinite(values) & (values > 0)]
    if len(usable) < 2:
        return None
    first, last = usable.iloc[0], usable.iloc[-1]
    return first.layer, last.layer, first[column] / last[column]


def _gradient_findings(acts: pd.DataFrame, weights: pd.DataFrame, t: dict, exploding: bool) -> list[Finding]:
    """vanishing / exploding: the first weight layer's gradient RMS relative to the last one's;
    exploding also when the gradient w.r.t. the outputs grows from the last activation layer
    back to the first (forward growth can hide it from the weight gradients)."""
    found = []
    weight_ratio = _first_to_last(weights, "grad_rms")
    if weight_ratio is not None:
        first, last, ratio = weight_ratio
        said = f"its weight gradient (RMS) is {number(ratio)} × that of the last layer ({last}): "
        if ratio < t["vanishing_ratio"]:
            found.append(_finding(first, "vanishing", ratio, t["vanishing_ratio"], said + "vanishing gradients"))
        elif ratio > t["exploding_ratio"]:
            found.append(_finding(first, "exploding", ratio, t["exploding_ratio"], said + "exploding gradients"))
    signal_ratio = _first_to_last(acts, "act_grad_rms")
    if signal_ratio is not None and not exploding and not any(f.problem == "exploding" for f in found):
        first, last, ratio = signal_ratio
        if ratio > t["exploding_ratio"]:
            found.append(_finding(first, "exploding", ratio, t["exploding_ratio"],
                                  f"the gradient reaching its outputs is {number(ratio)} × that at the last "
                                  f"activation layer ({last}): exploding gradients"))
    return found


def _update_findings(weights: pd.DataFrame, t: dict) -> list[Finding]:
    """update_small / update_large: the update-to-weight ratio of one step, layer by layer."""
    found = []
    low, high = t["update_ratio_range"]
    for row in weights.itertuples():
        said = (f"one step would change its weights by {number(row.update_ratio)} of their norm "
                f"(healthy: about {HEALTHY_UPDATE_RATIO:g}); ")
        if row.update_ratio < low:
            zero = row.update_ratio == 0
            text = "its gradient is exactly zero: it does not learn" if zero else said + "it barely learns"
            found.append(_finding(row.layer, "update_small", row.update_ratio, low, text))
        elif row.update_ratio > high:
            found.append(_finding(row.layer, "update_large", row.update_ratio, high,
                                  said + "the learning rate is too large for it"))
    return found


def findings(
    layers: pd.DataFrame, t: dict, n_examples: int, non_finite: set[str], losses: list[float], has_target: bool
) -> list[Finding]:
    """Every :class:`Finding` the per-layer table raises under the thresholds ``t``."""
    found: list[Finding] = []
    acts = layers[layers.kind == "activation"]
    weights = layers[layers.kind == "weight"]
    if has_target and not all(math.isfinite(v) for v in losses):
        found.append(_finding("loss", "exploding", float("inf"), float("inf"), "the loss is not finite"))
    bad = layers[layers.layer.isin(non_finite)]
    if len(bad):  # report where the non-finite values first appear
        found.append(_finding(bad.layer.iloc[0], "exploding", float("inf"), float("inf"),
                              "non-finite values (inf or NaN) in its outputs or gradient"))
    found += _activation_findings(acts, t, n_examples)
    found += _gradient_findings(acts, weights, t, exploding=any(f.problem == "exploding" for f in found))
    return found + _update_findings(weights, t)
