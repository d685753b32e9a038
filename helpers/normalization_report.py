r"""The normalization chapter's generated sentences, and the numbers they quote.

Each ``..._sentence`` function takes what :mod:`helpers.normalization` computed and returns the
Markdown of one paragraph, with its numbers formatted here, so that the text cannot drift from
the measurements:

- :func:`damper_outcomes`, :func:`damper_sentence`, :func:`gradient_story_sentence` — the
  debugging diary's fixed batch, without and with BatchNorm;
- :func:`map_sentence`, :func:`diagonal_sentence` — the learning rate × init scale map;
- :func:`ioffe_milestones`, :func:`ioffe_sentence` — Ioffe & Szegedy's Figure 1, small;
- :func:`batch_size_sentence`, :func:`collapse_sentence` — images per worker;
- :func:`eps_sentence`, :func:`tanh_sentence` — answers to exercises 2 and 5.

>>> eps_sentence(3e-3, 1e-7, 10.0).startswith("**Answer.** The output changes by only 3.0e-03")
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from . import normalization
from ._checks import check_int, check_number
from .text import counted, power_of_ten, sci, span


@dataclass
class DamperOutcomes:
    """The damper's runs by outcome: ``relu`` and ``leaky`` are the outcome of each seed without
    BatchNorm; ``bn_loss``, ``bn_acc`` the final training loss and accuracy of each run with it."""

    relu: pd.Series
    leaky: pd.Series
    bn_loss: list[float]
    bn_acc: list[float]


def damper_outcomes(runs: pd.DataFrame, damper: Mapping[tuple, object]) -> DamperOutcomes:
    """Collect :class:`DamperOutcomes` from :func:`~helpers.normalization.outcome_counts`' rows
    (``runs``) and the damper's ``{(activation, norm, seed): FitResult}``."""
    relu, leaky = (runs[runs.net == net].outcome for net in ["ReLU", "leaky ReLU"])
    with_bn = [r for (_, norm, _), r in damper.items() if norm == "batch"]
    return DamperOutcomes(relu, leaky, [r.final("eval_loss", "train") for r in with_bn],
                          [r.final("accuracy", "train") for r in with_bn])


def damper_sentence(o: DamperOutcomes) -> str:
    """How the damper's runs end, counted by outcome, without and with BatchNorm."""
    relu, leaky = o.relu, o.leaky
    return (
        f"Without BatchNorm most runs fail, and how is a matter of the seed. ReLU fits the 128 "
        f"examples on {(relu == 'fits').sum()} of {len(relu)} seeds, stalls short of them on "
        f"{(relu == 'stalls').sum()} and diverges on {(relu == 'diverges').sum()}; leaky ReLU diverges "
        f"on {(leaky == 'diverges').sum()}, stalls on {(leaky == 'stalls').sum()} and fits on "
        f"{(leaky == 'fits').sum()}. With BatchNorm every run of both nets trains: accuracy "
        f"{span(o.bn_acc, '.0%')}, final training loss at most {max(o.bn_loss):.2g}. (A run fits if its "
        f"accuracy on the 128 training examples, in evaluation mode, reaches {normalization.FITS:.0%} "
        "after the 150 steps; it stalls if it survives the 150 steps without fitting them.)")


def gradient_story_sentence(story: SimpleNamespace, runs: Mapping[tuple, object], x) -> str:
    """The gradient logs of :func:`~helpers.normalization.gradient_story` in words: the stall, the
    divergence and the two BatchNorm curves (``runs`` and ``x`` as given to it)."""
    relu0, leaky0 = runs["relu", None, story.s_relu], runs["leaky_relu", None, story.s_leaky]
    g_relu, g_leaky = normalization.grad_sum(relu0), normalization.grad_sum(leaky0)
    bn_relu = normalization.grad_sum(runs["relu", "batch", 0])
    growth, n_stall = story.growth, len(story.stall_seeds)
    growth_floor = power_of_ten(int(np.floor(np.log10(min(growth))))) if growth else "no"  # below all
    relu_story = (
        f"ReLU (seed {story.s_relu}, the clearest of the {n_stall} runs that stall): accuracy "
        f"{relu0.final('accuracy', 'train'):.2f}; its gradient sum fell from a peak of "
        f"{g_relu.max():.0f} to {g_relu.iloc[-1]:.2g}, and "
        f"{normalization.zero_share(relu0.model, x):.0%} of the last ReLU layer's outputs are "
        f"exactly zero — the post's histogram piled up at 0 ({span(story.zeros, '.0%')} in the runs "
        "that stall). " if n_stall else "No ReLU run stalled. ")
    return (
        relu_story + f"Leaky ReLU (seed {story.s_leaky}): the gradient sum grew from {g_leaky.iloc[0]:.0f} "
        f"to {sci(g_leaky.iloc[-1])} and then the loss was NaN at step {leaky0.diverged_step}; every "
        f"leaky ReLU run that diverges grew its gradient sum at least {growth_floor}-fold first. The "
        f"two BatchNorm curves lie on top of each other after the first few steps: from step 21 on "
        f"they never differ by more than {max(story.bn_late_gap):.0%} on any of the "
        f"{len(story.bn_late_gap)} seeds (in the first 20 steps by up to a factor "
        f"{story.bn_early_ratio:.1f}); with ReLU the sum falls from {bn_relu.iloc[0]:.0f} to "
        f"{bn_relu.iloc[-1]:.2g}.")


def map_sentence(m: SimpleNamespace, threshold: float, cells: int) -> str:
    """The trainable map of :func:`~helpers.normalization.map_summary` in words (``cells`` per map)."""
    check_int("cells", cells, minimum=1)
    near_text = "; ".join(f"{'with' if r.BatchNorm else 'without'} BatchNorm at init scale "
                          f"{r['init scale']:g} and learning rate {r['learning rate']:g} it is "
                          f"{r.accuracy:.3f}" for _, r in m.near.iterrows())
    high = (f"all {len(m.high)} cells" if m.high_trains.all() else
            f"{m.high_trains.sum()} of the {len(m.high)} cells")
    return (
        f"Cells with accuracy of at least {threshold} (outlined): **{m.ok[False]} of "
        f"{cells}** without BatchNorm, **{m.ok[True]}** with it"
        + (f". A cell printed 0.90 without an outline is just under the threshold, rounded up "
           f"({near_text})" if len(m.near) else "")
        + f". At learning rate 0.1 the accuracy varies by {m.spread_at[False]:.2f} across the "
        f"five init scales without BatchNorm and by {m.spread_at[True]:.2f} with it. Above "
        f"{m.best_lr_without:g}, the largest learning rate at which anything trains without "
        "BatchNorm, " + high + " train with it"
        + (f"; the {'other reaches' if len(m.short) == 1 else 'others reach'} "
           f"{span(m.short.accuracy)}" if len(m.short) else "") + ".")


def best_small_init(grid: pd.DataFrame) -> float:
    """The best accuracy without BatchNorm of any init scale below 1, at any learning rate."""
    return float(grid[~grid.BatchNorm & (grid["init scale"] < 1)].accuracy.max())


def diagonal_sentence(grid: pd.DataFrame, threshold: float) -> str:
    """Where the net trains without BatchNorm: the learning rates per init scale 1, 2 and 4."""
    trains_at = {s: normalization.lr_range(normalization.lrs_that_train(grid, s, threshold))
                 for s in (1.0, 2.0, 4.0)}
    return (
        f"Without BatchNorm the net trains only on a thin diagonal: Kaiming-scale weights (init scale "
        f"1) train {trains_at[1.0]}, doubled weights {trains_at[2.0]}, and quadrupled weights "
        f"{trains_at[4.0]} — the larger the weights, the smaller the step they tolerate. Half- and "
        f"quarter-scale inits are hopeless at every learning rate (at most {best_small_init(grid):.2f} "
        "accuracy): six layers shrink the signal by 0.5⁶ or 0.25⁶.")


@dataclass
class IoffeMilestones:
    """Per seed of :func:`~helpers.normalization.ioffe_run` (``seeds``, in order): test accuracy at
    ``step`` without and with BatchNorm, and the first recorded step at which the plain net passes
    ``level``."""

    plain_at: list[float]
    bn_at: list[float]
    rise_steps: list[float]
    seeds: list[int]
    step: int
    level: float


def ioffe_milestones(runs: Mapping[tuple, pd.DataFrame], seeds: Sequence[int] | None = None, step: int = 200,
                     level: float = 0.2) -> IoffeMilestones:
    """:class:`IoffeMilestones` of ``runs``, ``{(norm, seed): ioffe_run frame}``, for ``seeds``
    (default: every seed of ``runs``, ascending)."""
    check_int("step", step, minimum=1)
    check_number("level", level, minimum=0.0, maximum=1.0)
    seeds = sorted({s for _, s in runs}) if seeds is None else list(seeds)
    return IoffeMilestones([runs[None, s].set_index("step").accuracy[step] for s in seeds],
                           [runs["batch", s].set_index("step").accuracy[step] for s in seeds],
                           [r.step[r.accuracy > level].min() for r in (runs[None, s] for s in seeds)],
                           seeds, step, level)


def ioffe_sentence(m: IoffeMilestones) -> str:
    """Ioffe & Szegedy's Figure 1, small, in words (the milestones at ``m.step`` and ``m.level``;
    the plot shows the first seed)."""
    seeds = counted(len(m.seeds), "seed")
    return (
        f"As in the paper: with BatchNorm the net is near its final accuracy within a couple of "
        f"hundred steps (test accuracy {span(m.bn_at, '.3f')} at step {m.step} over the {seeds}), "
        f"while the plain net has barely started: at step {m.step} its test accuracy is "
        f"{span(m.plain_at, '.3f')} over the {seeds} (chance is about 0.1), and it first passes "
        f"{m.level:g} at step {m.rise_steps[0]:.0f} in the plot (seed {m.seeds[0]}; over the {seeds} at "
        f"{span(m.rise_steps, '.0f')}). The sigmoid's input distribution (15th, 50th and 85th percentile "
        f"over a batch, for one unit) sits still with BatchNorm but wanders and widens without it. The "
        f"table averages over all 100 units of the last hidden layer: the drift of the median between "
        f"the first and the last recorded step, in units of the typical 15–85 spread, and how much the "
        f"spread itself grew.")


def batch_size_sentence(err: pd.DataFrame) -> str:
    """The test error by images per worker (``err``: index per worker, a column per method) in words."""
    bn_err = err.BatchNorm
    bn_from_4 = bn_err.loc[4:]
    worse_at_64 = bn_err[64] > max(err.loc[64, "GroupNorm"], err.loc[64, "LayerNorm"])
    return (
        f"Read it like Wu & He's figure, from right to left: from 64 down to 4 images per worker "
        f"BatchNorm's error stays below {np.ceil(100 * bn_from_4.max()):.0f} %, between "
        f"{bn_from_4.min():.3f} (at {bn_from_4.idxmin()}) and {bn_from_4.max():.3f} (at "
        f"{bn_from_4.idxmax()}). That wobble, {bn_from_4.max() / bn_from_4.min():.1f}-fold, comes from "
        "one seed per setting and shows no trend"
        + (f"; at 64 BatchNorm ({bn_err[64]:.3f}) is even a little worse than GroupNorm "
           f"({err.loc[64, 'GroupNorm']:.3f}) and LayerNorm ({err.loc[64, 'LayerNorm']:.3f})"
           if worse_at_64 else "")
        + f". At 2 images per worker the error jumps to {bn_err[2]:.3f}. The batch-independent methods "
        "are flat lines by construction.")


def collapse_sentence(shallow: Mapping[int, float], deep_at_2: Sequence[float]) -> str:
    """The two-stage net's error at 2 and 64 per worker (``shallow``) against the four-stage net's
    at 2 per worker on several seeds (``deep_at_2``, one per seed)."""
    return (
        f"So Wu & He's collapse reproduces where the statistics really run out. On the two-stage net "
        f"the error at two images per worker is {shallow[2]:.3f} against {shallow[64]:.3f} at 64 — a "
        f"change of {100 * abs(shallow[2] - shallow[64]):.0f} points, not a collapse; the four-stage "
        f"net's is {span(deep_at_2, '.3f')} on {counted(len(deep_at_2), 'seed')}. Their gradual rise "
        "from 16 images down (a "
        "50-layer ResNet on ImageNet, trained for 100 epochs, where small statistical errors compound "
        "over many layers) needs a bigger problem than this one. What counts is the number of values "
        "behind each statistic, N·H·W, and how much the net depends on them.")


def eps_sentence(out_change: float, change_eps0: float, grad_ratio: float) -> str:
    """Exercise 2's answer: the output change with the default ε and with ε = 0, and the ratio of
    the weights' gradient norms at scale 1 and at scale 10."""
    return (
        f"**Answer.** The output changes by only {out_change:.1e}, and that is not float rounding: it "
        f"comes from the ε = 10⁻⁵ added to the variance, which matters a little next to the variance "
        f"at scale 1 and not at all next to the 100 times larger one at scale 10. With ε = 0 the "
        f"change is {change_eps0:.1e}, float32 rounding. The gradient is {grad_ratio:.3g} times smaller "
        "(the ratio printed above).")


def tanh_sentence(tanh_acc: pd.Series, tanh_ratio: float, sigmoid_ratio: float) -> str:
    """Exercise 5's answer: test accuracy by placement (``tanh_acc``, index "before"/"after") and
    the training-loss ratios before ÷ after for tanh and sigmoid."""
    same = round(tanh_acc["before"], 3) == round(tanh_acc["after"], 3)
    gap = abs(tanh_acc["before"] - tanh_acc["after"])
    return (
        "**Answer.** Closer to ReLU. Both placements train, the test accuracies "
        + ("are equal to three decimals" if same else f"differ by {100 * gap:.1f} points")
        + f", and the training loss with BatchNorm before tanh is {tanh_ratio:.1f} times that with it "
        f"after (with sigmoid it was {sigmoid_ratio:.1f} times). tanh is zero-centred, so its outputs "
        "already suit the next linear layer, and the placement hardly matters.")
