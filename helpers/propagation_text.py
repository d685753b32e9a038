"""The sentences the initialization chapter generates from its measurements.

Each function takes one experiment's numbers (frames of :mod:`helpers.propagation` and
:mod:`helpers.propagation_summaries`) and returns the Markdown the chapter displays, its numbers
formatted here.

>>> zero_output_answer(10, 0.93)[:50]
'**Answer.** No: after training all 10 output rows '
"""

from __future__ import annotations

import math

import pandas as pd

from .stats import TANH_SATURATION
from .text import count_word, power_of_ten, sci, span


def _all_of(n: int, noun: str) -> str:
    """``"all three nets"`` for ``n`` = 3 (``noun`` plural); ``"both"`` for 2, the digits above ten.

    >>> _all_of(3, "nets"), _all_of(2, "nets"), _all_of(12, "nets")
    ('all three nets', 'both nets', 'all 12 nets')
    """
    return f"both {noun}" if n == 2 else f"all {count_word(n)} {noun}"


def _layer(column: str) -> int:
    """The layer number of a column named ``"layer <n>"``."""
    return int(column.removeprefix("layer "))


def symmetry_sentence(const: pd.Series, zeros: pd.Series, xavier: pd.Series) -> str:
    """The constant, zero and random starts of :func:`helpers.propagation_summaries.symmetry_runs`."""
    return (
        "After 200 steps the constant-initialized net still has **one** distinct row in each hidden "
        "weight matrix (the largest difference between rows is "
        f"{const['hidden1: max |row − row 1|']:.1g}) and reaches {const['test accuracy']:.0%} test "
        "accuracy; the zero-initialized net's hidden weights are still exactly 0 and it gives the "
        f"same answer for every digit ({zeros['test accuracy']:.0%}); random weights reach "
        f"{xavier['test accuracy']:.0%}.")


def saturation_sentence(sat: pd.Series) -> str:
    """The saturated share of every layer of the N(0, 1) tanh net."""
    return (
        f"With N(0, 1), {sat.min():.0%}–{sat.max():.0%} of the outputs of *every* layer are "
        f"saturated, |tanh| > {TANH_SATURATION:g}, where the slope of tanh, 1 − tanh², is below "
        f"{1 - TANH_SATURATION**2:.2f}: "
        "the gradient is small for the opposite reason.")


def relu_drift_sentence(post: pd.Series, xavier: pd.Series) -> str:
    """The std per layer of the ReLU net with the post's scale and with plain Xavier's."""
    ratio_post, ratio_xavier = post.iloc[-1] / post.iloc[0], xavier.iloc[-1] / xavier.iloc[0]
    return (
        "**This claim of the post does not reproduce with the code it prints.** With √(4/(nᵢₙ + "
        f"nₒᵤₜ)) the spread of the ReLU outputs goes from {post.iloc[0]:.2f} to "
        f"{post.iloc[-1]:.2f} over ten layers (ratio {ratio_post:.2f}): it does not drift toward "
        "0. The drift appears with plain Xavier, √(2/(nᵢₙ + nₒᵤₜ)), where the spread falls from "
        f"{xavier.iloc[0]:.2f} to {xavier.iloc[-1]:.3f} (ratio "
        f"{ratio_xavier:.3f}); that is most likely the setting behind the post's figure. "
        "The next section shows why.")


def swapped_table_sentence(xavier_table: pd.DataFrame, tanh_acc: pd.DataFrame, sig_acc: pd.DataFrame) -> str:
    """The post's Xavier table tested: one pass per (activation, k) of
    :func:`helpers.propagation_summaries.xavier_k_profiles`, and the test accuracies (seed × k)."""
    xt = xavier_table["layer 1 / layer 10"]
    sat = xavier_table["saturated share (mean over layers)"]
    per_layer = xt["sigmoid", 1.0] ** (1 / 9)
    tanh_53 = tanh_acc[round(5 / 3, 3)]
    return (
        "**The post's table has tanh and sigmoid swapped.** With k = 4 a tanh net saturates "
        f"({sat[('tanh', 4.0)]:.0%} of its outputs on average) and its gradients *grow* by a factor "
        f"{xt[('tanh', 4.0)]:.0f} from layer 10 back to layer 1; it trains to "
        f"{tanh_acc[4.0].mean():.0%} against {tanh_acc[1.0].mean():.0%} with k = 1. A sigmoid net "
        f"with k = 1 divides its gradient by about {1 / per_layer:.1f} per layer (a factor "
        f"{sci(xt[('sigmoid', 1.0)], 1)} over nine layers) and does not train "
        f"({sig_acc[1.0].mean():.0%}); with k = 4 it reaches {sig_acc[4.0].mean():.0%}. PyTorch's "
        "`calculate_gain` gives sigmoid 1 — in this experiment the setting that stalls — and tanh "
        "5/3 (a little above 1 to offset tanh's contraction of large inputs), which trains "
        f"{'nearly as well as' if tanh_53.mean() < tanh_acc[1.0].mean() else 'as well as'} k = 1 in "
        f"this 8-layer net ({tanh_53.mean():.0%}); its advantage shows in deeper stacks, where gain 1 "
        "lets the signal fade (see the explorer).")


def he_sentence(runs: pd.DataFrame, near_chance: float) -> str:
    """He et al.'s 30-layer net: Kaiming's and Xavier's seeds (:func:`helpers.propagation_summaries.train_schemes`
    rows with the inits ``Kaiming`` and ``Xavier (gain 1)``); ``near_chance``: a final loss no better than chance."""
    kaiming, xavier = runs[runs.init == "Kaiming"], runs[runs.init == "Xavier (gain 1)"]
    kaiming_loss, kaiming_acc = kaiming["final train loss"].dropna(), kaiming["test accuracy"].dropna()
    stuck, diverged = int((kaiming_loss >= near_chance).sum()), int((kaiming.status == "diverged").sum())
    return (
        f"After 300 steps Kaiming's net has a median training loss of {kaiming_loss.median():.2f} and "
        f"classifies about {kaiming_acc.median():.0%} of the test set (median of {len(kaiming_acc)} "
        f"seeds; {span(kaiming_acc, '.0%')} per seed"
        + (f"; {stuck} of the {len(kaiming_loss)} runs ended no more than {math.log(10) - near_chance:.2f} "
           "below the loss of chance"
           + (f", {diverged} of them diverged" if diverged else "") if stuck else "")
        + f"). The test accuracy of Xavier's net stays at {span(xavier['test accuracy'].dropna(), '.0%')} "
        "on every seed.")


def singular_value_sentence(sv_summary: pd.DataFrame) -> str:
    """The Jacobians' log₁₀ singular values (:func:`helpers.propagation_summaries.singular_value_summary`)."""
    g_lin, g_tanh, o_tanh = (sv_summary.loc[k] for k in [
        ("linear", "Gaussian, var 1/n"), ("tanh", "Gaussian, var 1/n"), ("tanh", "orthogonal")])
    return (
        "In the linear net every singular value is 1 with orthogonal weights, while Gaussian weights "
        f"with the *same* variance spread them from about {power_of_ten(round(g_lin['min']))} to "
        f"{power_of_ten(round(g_lin['max']))}, with the median direction shrunk about "
        f"{power_of_ten(round(-g_lin['median']))}-fold. tanh compresses the signal, so the orthogonal "
        "tanh net's singular values all sit below 1 (median about "
        f"{power_of_ten(round(o_tanh['median']))}), but their log-spread (standard deviation "
        f"{o_tanh['spread_decades']:.2f} decades) is a fraction of the Gaussian net's "
        f"({g_tanh['spread_decades']:.2f}).")


def transfer_sentence(gap: pd.DataFrame) -> str:
    """The gain of pre-training (:func:`helpers.propagation_summaries.transfer_gain`), per number of
    labelled examples."""
    helped, mean_gain = gap["gain"] > 0, gap.groupby(level=0)["gain"].mean()
    return (
        "Starting from the net trained on classes 0–4 raises the test accuracy on classes 5–9 by "
        + " and ".join(f"{100 * g:.1f} percentage points with {n} labelled examples"
                       for n, g in mean_gain.items())
        + (", on every seed" if helped.all()
           else f" on average (it helped in {helped.sum()} of the {len(gap)} runs)")
        + ": what the hidden layers learned on the first five classes carries over to the other "
          "five (MNIST-1D shifts, scales and corrupts every class in the same ways). It is "
          "initialization in the literal sense: the same net, the same optimizer, only a different "
          "starting point.")


def leaky_gain_answer(summary: pd.DataFrame, a: float) -> str:
    """Exercise 1: :func:`helpers.propagation_summaries.leaky_gain_factors` with slope ``a`` (its depth
    in ``summary.attrs["depth"]``)."""
    if "depth" not in summary.attrs:
        raise ValueError("summary.attrs has no 'depth'; pass the frame of leaky_gain_factors")
    depth = summary.attrs["depth"]
    n = depth - 2  # layer-to-layer factors from layer 2 to the last
    relu_gain, leaky_gain = summary.loc["ReLU gain √2"], summary.loc["leaky gain √(2/(1+a²))"]
    return (
        "**Answer.** With ReLU's gain the variance grows by a factor "
        f"{relu_gain['measured: mean']:.3f} per layer on average, against the predicted 1 + a² = "
        f"{relu_gain['predicted']:.3f}: predicted {(1 + a**2) ** n:.0f}-fold, measured about "
        f"{relu_gain['measured: mean'] ** n:.0f}-fold from layer 2 to layer {depth} ({n} layer-to-layer "
        "factors; layer 1, whose input is the digits rather than a leaky-ReLU layer, is left out of "
        f"the ratio); with the leaky gain it stays near 1 ({leaky_gain['measured: mean']:.3f}, "
        f"predicted {leaky_gain['predicted']:.3f}). The theory describes the average: single draws of "
        "the weights wander by a few per cent per layer at this width "
        f"({relu_gain['measured: min']:.3f}–{relu_gain['measured: max']:.3f} for the ReLU gain).")


def zero_output_answer(out_rows: int, accuracy: float) -> str:
    """Exercise 2: the distinct output rows and test accuracy of the net with a zero output layer."""
    return (
        f"**Answer.** No: after training all {out_rows} output rows are distinct and the net reaches "
        f"{accuracy:.0%} test accuracy. Each output unit compares its own target (one class) "
        "with the prediction, so the gradient of output unit k, (p_k − y_k) · h, differs from unit "
        "to unit from the first step on. Symmetry needs units that are interchangeable; output units "
        "are not. The hidden units get nonzero gradients from step 2 on, once the output weights are "
        "no longer zero.")


def lsuv_answer(lsuv_runs: pd.DataFrame, near_chance: float, xavier_acc: pd.Series,
                kaiming_acc: pd.Series) -> str:
    """Exercise 3: LSUV's runs (one row per seed) against Xavier's and Kaiming's test accuracies."""
    lsuv_loss, lsuv_acc = lsuv_runs["final train loss"], lsuv_runs["test accuracy"]
    lsuv_stuck = int((lsuv_loss >= near_chance).sum())
    return (
        f"**Answer.** Yes, in the median over seeds. After 200 steps the LSUV-initialized net has a "
        f"median training loss of {lsuv_loss.median():.2f} (chance: ln 10 ≈ 2.30) and a median test "
        f"accuracy of {lsuv_acc.median():.0%} ({span(lsuv_acc, '.0%')} on the {len(lsuv_runs)} seeds"
        + (f"; {lsuv_stuck} of the runs ended no more than {math.log(10) - near_chance:.2f} below the "
           "loss of chance"
           if lsuv_stuck else "")
        + f"), where the Xavier net stays at {span(xavier_acc, '.0%')} after 300 steps; Kaiming's "
          f"reaches a median of {kaiming_acc.median():.0%} after 300 steps.")


def gelu_answer(c_gelu: float, slope: float, gelu_runs: pd.DataFrame) -> str:
    """Exercise 4: GELU's gain, the slope of its variance map and the variances of the GELU nets
    (seed × ``layer 1``, ..., ``layer <last>``: the first and the last columns are quoted)."""
    first, last = min(gelu_runs.columns, key=_layer), max(gelu_runs.columns, key=_layer)
    steps = _layer(last) - _layer(first)
    return (
        f"**Answer.** The gain exists, c = {c_gelu:.3f}, but the fixed point is unstable: the slope "
        f"of the variance map there is {slope:.3f} > 1, so a deviation grows about "
        f"{slope**steps:.0f}-fold over {steps} layers. GELU is not homogeneous (it behaves like z/2 near 0 "
        "and like ReLU for large z), so a layer that comes out a little too large makes the next one "
        f"larger still. Finite-width noise is enough: {_all_of(len(gelu_runs), 'nets')} start at variance "
        f"{span(gelu_runs[first])} in {first} and end at {gelu_runs[last].min():.2f}–"
        f"{gelu_runs[last].max():.2f} in {last} — the same drift LSUV showed for GELU. ReLU's map is "
        "exactly linear (slope 1): "
        "deviations neither grow nor shrink; tanh's slope is below 1: they shrink.")
