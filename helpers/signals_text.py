"""The sentences the vanishing and exploding gradients chapter generates from its measurements.

Each function takes the numbers of one experiment (mostly the frames and dataclasses of
:mod:`helpers.signals_summaries`) and returns the Markdown sentence the chapter displays, its numbers
formatted here, so the text cannot drift from the measurements.

>>> steepness_answer({10: 23.0, 80: 2.3e6}, 1.17514, 1.17502)[:60]
'**Answer.** Exponentially: |∂x_T/∂b| grows from 23 at T = 10'
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .signals import climb
from .signals_summaries import Divergence, FlowRatios
from .text import power_of_ten, sci, span


def flow_sentence(fr: FlowRatios) -> str:
    """The first-to-last gradient ratios of the sigmoid, tanh and ReLU nets at initialization."""
    ratio = fr.ratio
    seeds = ratio.columns
    return (
        f"Every net starts with a weaker gradient in its first layer than in its last, and the sigmoid "
        f"net's is smaller by about {-fr.sig_decades} orders of magnitude (a ratio of about "
        f"{power_of_ten(fr.sig_decades)}): each sigmoid layer keeps less than the 1/4 that the derivative "
        f"bound allows. tanh's first layer gets {span(ratio.loc['tanh'], '.2f')} of the output layer's "
        f"gradient, ReLU's only {span(ratio.loc['relu'], '.3f')}, {span(fr.relu_loses, '.0f')} times less "
        f"(seed{'s' if len(seeds) > 1 else ''} {span(seeds, 'd')}).")


def backward_factor_sentence(decomp: pd.DataFrame) -> str:
    """The per-layer factors of :func:`helpers.signals_summaries.backward_factors` (sigmoid, tanh, relu)."""
    t, r, sg = decomp.loc["tanh"], decomp.loc["relu"], decomp.loc["sigmoid"]
    predicted = decomp["predicted √(E[φ′²]/3)"]
    return (
        f"The backward signal shrinks as predicted, by about {t['backward signal']:.2f} per layer for "
        f"tanh (predicted {predicted['tanh']:.2f}) and {r['backward signal']:.2f} for ReLU (predicted "
        f"{predicted['relu']:.2f}). The weight gradients of the figure shrink less, by about "
        f"{t['weight gradient']:.2f} and {r['weight gradient']:.2f} per layer, because the forward "
        f"signal shrinks too: with these small weights each layer's activations are smaller than its "
        f"input's, so going down towards the first layer the inputs aₗ₋₁ grow by about "
        f"{t['input RMS']:.2f} (tanh) and {r['input RMS']:.2f} (ReLU) per layer and partly cancel the "
        f"loss (the weight gradient sums the products ∂L/∂zₗ aₗ₋₁ᵀ over the batch, so the two factors "
        f"do not multiply exactly). A sigmoid's outputs stay near 0.5 at every depth (input factor "
        f"{sg['input RMS']:.2f}), so nothing cancels: its weight gradient shrinks by "
        f"{sg['weight gradient']:.2f} per layer, close to its backward signal's "
        f"{sg['backward signal']:.2f} and predicted {predicted['sigmoid']:.2f}.")


def tanh_gain_sentence(ratios: pd.Series, gain1: float, gain53: float) -> str:
    """The 20-layer tanh net's first-to-last ratio at gain 1, scale 2, gain 5/3 and scale 4
    (``ratios``: :func:`helpers.signals_summaries.first_to_last_grid`)."""
    return (
        f"For the 20-layer tanh net the gradient is balanced near gain 1: its first layer gets "
        f"{gain1:.2f} times the output layer's gradient at scale √3 and {ratios[20, 'tanh', 2.0]:.2f} "
        f"times at scale 2. At tanh's recommended gain 5/3 it gets {gain53:.1f} times as much, a "
        f"growth of about {gain53 ** (1 / 20):.2f} per layer: 5/3 is chosen to offset tanh's "
        f"contraction of the forward signal (see the initialization chapter), which puts the backward "
        f"factor a little above one, still far from the {ratios[20, 'tanh', 4.0]:.0f}-fold growth at "
        f"scale 4.")


def divergence_sentence(div: Divergence) -> str:
    """How many seeds turned nan, and how the run shown got there."""
    if div.shown.status != "diverged":
        return (f"No seed diverged within the {div.shown.steps_run} steps on this machine (the run shown is "
                f"seed {div.shown_seed}).")
    log, end = div.log, div.end
    low = int(log.step[log.value.idxmin()])  # the update with the smallest gradient sum
    calm = (f"looks healthy for its first {low} updates — the gradient sum even falls, to its lowest "
            f"at update {low} — then" if low > 1 else
            "has its smallest gradient sum at the first update; then")
    return (
        f"Without clipping, the loss turns `nan` on {div.nan_step.notna().sum()} of the {len(div.nan_step)} "
        f"seeds, at steps {', '.join(f'{v:.0f}' for v in div.diverging)}. The run shown (seed "
        f"{div.shown_seed}) is the median one: it {calm} its gradient sum climbs "
        f"{sci(climb(div.shown)['growth'], 1)}-fold in {end - 1 - low} updates and the loss becomes `nan`; `fit` "
        f"stops and reports `{div.shown.status}`.")


def clip_rescue_sentence(clipped: pd.DataFrame, steps: int) -> str:
    """The clipped runs of :func:`helpers.signals_summaries.rescue_table` (indexed by seed), trained for
    ``steps`` steps: how many ran through, how low they got, and which ended higher again."""
    final, lowest = clipped["final train loss"], clipped["lowest train loss"]
    bounced = final[(final > 1e-3) & (final > 30 * lowest)]
    n_ok, plural = int((clipped.status == "ok").sum()), len(bounced) > 1
    return (
        f"With the clip {'every seed' if n_ok == len(clipped) else f'{n_ok} of {len(clipped)} seeds'} "
        f"runs the {steps} steps without a `nan`, and every run that does gets its loss below "
        f"{lowest.max():.0e} on the way (median final loss {final.median():.1g})."
        + (f" {'Seeds' if plural else 'Seed'} {', '.join(map(str, bounced.index))} "
           f"{'end' if plural else 'ends'} higher again ({', '.join(f'{v:.2g}' for v in bounced)}): "
           f"once the gradient is small the clip is idle, and learning rate 0.1 with momentum 0.9 can "
           f"throw the net out of its minimum late in the run. Clipping bounds each step; it does not "
           f"make the step size right." if len(bounced) else ""))


def sizing_answer(sizing: pd.DataFrame, balanced: float) -> str:
    """Exercise 1: the sigmoid net at 4× Xavier and at the balancing multiple
    (:func:`helpers.signals_summaries.sigmoid_sizing`)."""
    return (
        f"**Answer.** No: at 4× Xavier the first layer still gets only "
        f"{sizing.loc[4.0, 'first/last ratio']:.2g} of the output layer's gradient. The rule assumes "
        f"the units stay near z = 0, where the slope is 1/4, but weights that large push them away "
        f"from it. The gradient is closest to balanced at {balanced:g}× Xavier (ratio "
        f"{sizing.loc[balanced, 'first/last ratio']:.2g}), where "
        f"{sizing.loc[balanced, 'share saturated']:.0%} of the units are saturated: the net passes "
        f"gradient through its few unsaturated units with large weights, not a comfortable place to "
        f"start training.")


def residual_answer(update_gain: float, plain_accuracy: float, residual_accuracy: float) -> str:
    """Exercise 2: the residual sigmoid net's first-layer update ratio over the plain net's, and both
    nets' test accuracy."""
    return (
        f"**Answer.** Yes. The first layer's median update ratio rises "
        f"{sci(update_gain)}-fold, and the test accuracy goes from "
        f"{plain_accuracy:.0%} to {residual_accuracy:.0%}. With x + σ(Wx + b) the backward pass "
        f"has an identity path around every sigmoid, so the gradient that reaches layer 1 is no longer "
        f"a product of ten factors below 1/4.")


def fixes_answer(nan_at: pd.DataFrame, steps: int) -> str:
    """Exercise 3: which remedies kept the leaky-ReLU net from diverging in ``steps`` steps (``nan_at``:
    seed × remedy of :func:`helpers.signals_summaries.nan_steps`, with the columns none, weight decay
    0.03, Kaiming, gain 1 and residual)."""
    n, n_div = len(nan_at), nan_at.notna().sum()
    gain1 = nan_at["Kaiming, gain 1"].dropna()
    survive = n - len(gain1)
    return (
        f"**Answer.** Only clipping prevents the divergence on all {n} seeds: this net diverges "
        f"because single steps are too long for the learning rate and momentum, which is exactly what "
        f"clipping bounds. Weight decay shrinks the weights by only 0.1 × 0.03 = 0.3 % per step and "
        f"saves {n - n_div['weight decay 0.03']} of {n} seeds. Residual connections add each block's "
        f"input to its output, so the forward signal grows even faster (nan by step "
        f"{nan_at['residual'].max():.0f}). Even the balanced initialization (gain 1) diverges on "
        f"{len(gain1)} of {n} seeds, only later (nan at steps {span(gain1, '.0f')}, against "
        f"{span(nan_at['none'].dropna(), '.0f')} with gain "
        f"1.2{'' if not survive else f'; the other {survive} ran the {steps} steps'}): learning rate 0.1 "
        f"with momentum 0.9 is too large for this net. In section 6 the failure was a bad scale, and "
        f"there clipping was the wrong tool.")


def steepness_answer(steepness: Mapping[int, float], per_step: float, predicted: float) -> str:
    """Exercise 4: ``|∂x_T/∂b|`` at the shortest and longest T, the growth per step and w·σ′(x₀)."""
    first, last = min(steepness), max(steepness)
    return (
        f"**Answer.** Exponentially: |∂x_T/∂b| grows from {sci(steepness[first])} at T = {first} to "
        f"{sci(steepness[last])} at T = {last}, a factor {per_step:.4f} per step, which is w·σ′(x₀) = "
        f"5·σ′(0.5) = {predicted:.4f}. At the unstable fixed point every step multiplies a perturbation by "
        f"that factor, so the cliff's gradient explodes with the sequence length exactly as a deep "
        f"net's gradient does with depth.")
