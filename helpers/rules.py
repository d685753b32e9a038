"""The health report's rules: each problem, the threshold that raises it, where the threshold
comes from, and the chapter that explains it. The one place the report's judgement lives.

:func:`findings` turns the per-layer table that :func:`helpers.health.report` measures into a list
of :class:`Finding` objects; :data:`THRESHOLDS` holds every default with its reason.

>>> sorted(THRESHOLDS)[:2]
['dead_fraction', 'exploding_ratio']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._checks import check_number
from .text import number

PROBLEMS = ("dead", "saturated", "collapsed", "vanishing", "exploding", "update_small", "update_large",
            "weights_large", "init_loss", "inputs_unscaled", "stale_batchnorm", "softmax_output")
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
    "weights_large": ("02_initialization.ipynb", "the initialization chapter"),
    "init_loss": ("02_initialization.ipynb", "the initialization chapter"),
    "inputs_unscaled": ("04_dead_relu.ipynb", "the dead-ReLU chapter"),
    "stale_batchnorm": ("05_diagnose.ipynb", "the diagnosis chapter"),
    "softmax_output": ("05_diagnose.ipynb", "the diagnosis chapter"),
}
#: The threshold behind each problem (a key of ``THRESHOLDS``).
BASIS: dict[str, str] = {
    "dead": "dead_fraction", "saturated": "saturated_fraction", "collapsed": "min_example_std",
    "vanishing": "vanishing_ratio", "exploding": "exploding_ratio", "update_small": "update_ratio_range",
    "update_large": "update_ratio_range", "weights_large": "max_weight_scale", "init_loss": "init_loss_factor",
    "inputs_unscaled": "max_input_rms", "stale_batchnorm": "max_eval_gap", "softmax_output": "probabilities",
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
    "max_weight_scale": (4.0, "a weight's RMS × √fan-in is the gain its init gave it: 1 (Xavier, PyTorch's "
                              "default 0.58) to √2 (He) or 5/3 (tanh); above 4, far more than any scheme gives, "
                              "and normalisation after the layer hides it from the forward signal"),
    "init_loss_factor": (2.0, "at initialisation a classifier's cross-entropy should be about ln K for K "
                              "balanced classes (Karpathy, 'A recipe for training neural networks', 2019); "
                              "twice ln K means confidently wrong outputs"),
    "normalized_update_factor": (10.0, "a weight whose output goes straight into BatchNorm or LayerNorm is "
                                       "scale-invariant: a large first update grows its norm and so shrinks "
                                       "the next ones (van Laarhoven 2017; Arora et al. 2019); its update_large "
                                       "threshold is 10 × the others'"),
    "max_input_rms": (10.0, "inputs of unit scale are what every init scheme assumes; an RMS above 10 "
                            "(raw pixels 0-255 have about 100) is unnormalised data"),
    "probabilities": (1e-3, "outputs that are all non-negative and sum to 1 within this, for every example, "
                            "are probabilities: F.cross_entropy applies log-softmax itself, so a softmax "
                            "before it squashes the gradient (a common bug on Stack Overflow, DeepLocalize)"),
    "max_eval_gap": (0.5, "evaluation-mode outputs (running BatchNorm statistics) that differ from "
                          "training-mode ones by more than half their size: the statistics are stale"),
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
    basis: str = ""  # where the threshold comes from (``THRESHOLDS``)

    def __str__(self) -> str:
        return self.message


def _finding(layer: str, problem: str, value: float, threshold: float, text: str) -> Finding:
    chapter, called = CHAPTERS[problem]
    basis = THRESHOLDS[BASIS[problem]][1]
    return Finding(layer, problem, value, threshold, f"{layer}: {text} — see {called} ({chapter})", chapter, basis)


def _activation_findings(acts: pd.DataFrame, t: dict, n_examples: int) -> list[Finding]:
    """dead, saturated and collapsed, layer by layer."""
    found = []
    if n_examples < 2:  # one example: nothing varies across examples, every zero is "dead"
        acts = acts.iloc[:0]
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


def _judged(weights: pd.DataFrame) -> pd.DataFrame:
    """The weight layers whose gradient and update the rules judge: not embeddings (lookup tables:
    most rows get no gradient from a batch), not attention's query/key projections (at
    initialisation attention is near uniform, so their gradients are small by design), not layers
    behind a zero-initialised or scaled-down branch (see :func:`helpers.layers.scaled_down`)."""
    keep = weights.role.fillna("").isin(["", "normalized"]) & (weights.behind.fillna("") == "")
    return weights[keep]


def _depth_ratios(weights: pd.DataFrame) -> list[float]:
    """First-to-last gradient RMS within each group of repeated layers (names equal but for their
    numbers: ``hidden#.linear``, ``encoder.layer.#.attention.self.value``): the change with depth
    alone, without the difference between a stem, a body and a head."""
    template = weights.layer.str.replace(r"\d+", "#", regex=True)
    ratios = []
    for _, group in weights.groupby(template, sort=False):
        ratio = _first_to_last(group, "grad_rms") if len(group) >= 2 else None
        if ratio is not None:
            ratios.append(ratio[2])
    return ratios


def _gradient_findings(acts: pd.DataFrame, weights: pd.DataFrame, t: dict, exploding: bool) -> list[Finding]:
    """vanishing / exploding: the first weight layer's gradient RMS relative to the last one's, when
    the repeated layers agree (their own first-to-last ratios cross the same threshold; a net of a
    stem, a few blocks and a head, a transformer, can have a small first-to-last ratio with no
    change along its depth); exploding also when the gradient w.r.t. the outputs grows from the
    last activation layer back to the first (forward growth can hide it from the weight gradients)."""
    found = []
    judged = _judged(weights)
    weight_ratio = _first_to_last(judged, "grad_rms")
    depth = _depth_ratios(judged)
    if weight_ratio is not None and depth:
        low, high = min(depth), max(depth)
        if weight_ratio[2] < t["vanishing_ratio"] <= low or weight_ratio[2] > t["exploding_ratio"] >= high:
            weight_ratio = None  # the repeated layers do not change with depth: not vanishing or exploding
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


def _weight_findings(weights: pd.DataFrame, t: dict) -> list[Finding]:
    """update_small / update_large (the update-to-weight ratio of one step) and weights_large."""
    found = []
    low, high = t["update_ratio_range"]
    judged = set(_judged(weights).layer)
    for row in weights.itertuples():
        said = (f"one step would change its weights by {number(row.update_ratio)} of their norm "
                f"(healthy: about {HEALTHY_UPDATE_RATIO:g}); ")
        if row.update_ratio < low and row.layer in judged:
            zero = row.update_ratio == 0
            text = "its gradient is exactly zero: it does not learn" if zero else said + "it barely learns"
            found.append(_finding(row.layer, "update_small", row.update_ratio, low, text))
        elif row.update_ratio > high * (t["normalized_update_factor"] if row.role == "normalized" else 1):
            limit = high * (t["normalized_update_factor"] if row.role == "normalized" else 1)
            found.append(_finding(row.layer, "update_large", row.update_ratio, limit,
                                  said + "the learning rate is too large for it"))
        if row.role != "embedding" and row.weight_scale > t["max_weight_scale"]:
            found.append(_finding(row.layer, "weights_large", row.weight_scale, t["max_weight_scale"],
                                  f"its weights' RMS × √fan-in is {number(row.weight_scale)}, far above any init "
                                  "scheme's gain (1 to √2): the weights are too large"))
    return found


@dataclass
class Context:
    """What the report measured beside the per-layer table."""

    n_examples: int
    losses: list[float]
    loss_source: str  # "target", "model" or "random"
    classes: int = 0  # K, when the loss is cross-entropy on integer targets
    input_rms: float = float("nan")
    eval_gap: float = float("nan")
    non_finite: set[str] = field(default_factory=set)
    probabilities: bool = False


def _context_findings(c: Context, t: dict) -> list[Finding]:
    """init_loss, inputs_unscaled and stale_batchnorm: the checks careful practitioners run first."""
    found = []
    loss = float(np.mean(c.losses)) if c.losses else float("nan")
    if c.classes >= 2 and math.isfinite(loss) and loss > t["init_loss_factor"] * math.log(c.classes):
        found.append(_finding("loss", "init_loss", loss, t["init_loss_factor"] * math.log(c.classes),
                              f"the loss is {number(loss)}, above {t['init_loss_factor']:g} × ln K = "
                              f"{number(t['init_loss_factor'] * math.log(c.classes))} for K = {c.classes} classes: "
                              "the outputs are confidently wrong"))
    if c.input_rms > t["max_input_rms"]:
        found.append(_finding("input", "inputs_unscaled", c.input_rms, t["max_input_rms"],
                              f"the inputs' RMS is {number(c.input_rms)}: normalise them to unit scale"))
    if c.probabilities:
        found.append(_finding("output", "softmax_output", 1.0, 1.0,
                              "the outputs given to the cross-entropy are probabilities (non-negative, summing to "
                              "1): remove the softmax, the loss applies its own"))
    if c.eval_gap > t["max_eval_gap"]:
        found.append(_finding("model", "stale_batchnorm", c.eval_gap, t["max_eval_gap"],
                              f"evaluation-mode outputs differ from training-mode ones by {number(c.eval_gap)} of "
                              "their size: the BatchNorm running statistics do not match the data"))
    return found


def findings(layers: pd.DataFrame, t: dict, context: Context) -> list[Finding]:
    """Every :class:`Finding` the per-layer table and the context raise under the thresholds ``t``."""
    found: list[Finding] = []
    acts = layers[layers.kind == "activation"]
    weights = layers[layers.kind == "weight"]
    if context.loss_source != "random" and not all(math.isfinite(v) for v in context.losses):
        found.append(_finding("loss", "exploding", float("inf"), float("inf"), "the loss is not finite"))
    bad = layers[layers.layer.isin(context.non_finite)]
    if len(bad):  # report where the non-finite values first appear
        found.append(_finding(bad.layer.iloc[0], "exploding", float("inf"), float("inf"),
                              "non-finite values (inf or NaN) in its outputs or gradient"))
    found += _activation_findings(acts, t, context.n_examples)
    found += _gradient_findings(acts, weights, t, exploding=any(f.problem == "exploding" for f in found))
    return found + _weight_findings(weights, t) + _context_findings(context, t)


def explained(layers: pd.DataFrame, t: dict) -> list[str]:
    """Notes on what the rules did not judge, and why (standard practice, not a problem)."""
    weights = layers[layers.kind == "weight"]
    notes = []
    zero = weights[weights.weight_norm == 0]
    if len(zero):
        notes.append(f"zero-initialised weights ({_names(zero.layer)}): no update ratio; standard for a "
                     "residual branch's last layer or a classifier head")
    for role, why in (("query_key", "attention's query/key projections get small gradients while attention is "
                                    "near uniform, as at initialisation"),
                      ("embedding", "embeddings are lookup tables: their update ratio is over the rows this data "
                                    "used, and they are left out of the gradient-ratio rule")):
        shown = weights[weights.role == role]
        if len(shown):
            notes.append(f"{why} ({_names(shown.layer)})")
    shadowed = weights[weights.behind.fillna("") != ""]
    if len(shadowed):
        notes.append(f"{len(shadowed)} layers sit behind zero-initialised or scaled-down parameters "
                     f"({_names(sorted(set(shadowed.behind)))}: zero-γ, SkipInit, LayerScale or a zero head): "
                     "their gradients at the first step are (near) zero by design and are not judged")
    return notes


def _names(names) -> str:
    names = list(names)
    return ", ".join(names) if len(names) <= 3 else f"{names[0]}, {names[1]}, … {len(names)} in all"


def check_thresholds(dead_fraction, saturated_fraction, min_example_std, vanishing_ratio, exploding_ratio,
                      update_ratio_range) -> dict[str, object]:
    """The thresholds of the per-layer rules, checked (each error names the argument)."""
    check_number("dead_fraction", dead_fraction, minimum=0.0, maximum=1.0)
    check_number("saturated_fraction", saturated_fraction, minimum=0.0, maximum=1.0)
    check_number("min_example_std", min_example_std, minimum=0.0)
    check_number("vanishing_ratio", vanishing_ratio, minimum=0.0, strict=True)
    check_number("exploding_ratio", exploding_ratio, minimum=0.0, strict=True)
    if vanishing_ratio >= exploding_ratio:
        raise ValueError(f"vanishing_ratio={vanishing_ratio!r} must be below exploding_ratio={exploding_ratio!r}")
    if not (isinstance(update_ratio_range, (tuple, list)) and len(update_ratio_range) == 2):
        raise TypeError(f"update_ratio_range must be a (low, high) pair, got {update_ratio_range!r}")
    low = check_number("update_ratio_range[0]", update_ratio_range[0], minimum=0.0)
    high = check_number("update_ratio_range[1]", update_ratio_range[1], minimum=0.0)
    if not low < high:
        raise ValueError(f"update_ratio_range={update_ratio_range!r} is not valid; give (low, high) with low < high")
    return {"dead_fraction": dead_fraction, "saturated_fraction": saturated_fraction,
            "min_example_std": min_example_std, "vanishing_ratio": vanishing_ratio,
            "exploding_ratio": exploding_ratio, "update_ratio_range": (low, high)}
