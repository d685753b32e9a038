r"""The dead-ReLU chapter's measurements in numbers and words (one ReLU neuron aside, which is
:mod:`helpers.dying_neuron`; the debugging diary's fixed batch is :mod:`helpers.dying_diary`; nets
dead at initialization are :mod:`helpers.dying_born`).

Each function reads runs of :mod:`helpers.dying` (or trains a few memoized ones) and returns a
tidy frame, a small dataclass or the Markdown of one generated sentence:

- :func:`watch_frames`, :func:`hidden_output`, :func:`death_at_init`,
  :func:`healthy_rate_sentence`, :func:`first_steps`, :func:`first_steps_sentence` — the
  unnormalized-pixels post's net, at initialization and in its first steps;
- :func:`squash_sentence`, :func:`death_onset`, :func:`onset_sentence` — sigmoid and tanh on raw
  pixels, and the phase diagram;
- :func:`squash_stats` — accuracy and frozen share by activation and learning rate;
- :data:`REMEDY_GROUPS`, :func:`remedy_rows` — the remedies grouped by what they do;
- :func:`accuracy_grid`, :func:`mild_table`, :func:`mild_summary`, :func:`mild_sentence` — Leaky
  ReLU against ReLU at a milder learning rate;
- :func:`dead_curves`, :func:`inspected_sentence`, :func:`row_gradients`,
  :func:`dead_and_accuracy`, :func:`fix_table` — dead units in an ordinary ``nn.Sequential``;
- :func:`clip_sentence`, :func:`silent_units`, :func:`silent_sentence` — answers to exercises 3
  and 4.

>>> death_onset(pd.DataFrame({"lr": [0.1, 0.5, 0.1, 0.5], "top": [1, 1, 9, 9],
...                           "dead": [0.0, 0.2, 0.1, 0.9]}))
{1: inf, 9: 0.5}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd
import torch
from torch import nn

from . import dying, monitor, stats, train
from ._checks import check_choice, check_int, check_number
from .text import counted, span

INIT_RATE = "zero share of all outputs (relu_rate)"

def _listed(values: Sequence) -> str:
    """``"0, 1, 2 and 5"``: the values joined by commas, the last by "and"."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


# -- the unnormalized-pixels post's net -----------------------------------------------------------
def watch_frames(settings: Mapping[str, Mapping], seed: int = 0) -> pd.DataFrame:
    """The :class:`~helpers.dying.DeadUnitWatch` frames of :func:`~helpers.dying.run` for each named
    setting (name → arguments), stacked with a column ``setting``."""
    return pd.concat([dying.run(seed=check_int("seed", seed, minimum=0), **setting)[1].assign(setting=name)
                      for name, setting in settings.items()])


def death_at_init(x: torch.Tensor, sizes: Sequence[int] = (8, 32, 256), n: int = 50, seed: int = 0) -> pd.Series:
    """The ReLU outputs of :func:`~helpers.dying.pixels_net` (``seed``) at initialization, on
    ``x``: the share that is zero, the share of units dead on random batches of each size (mean of
    ``n`` batches) and on the whole of ``x``."""
    with torch.no_grad():
        h0 = dying.pixels_net(seed=seed).hidden1(x)
    at_init = {INIT_RATE: float((h0 == 0).float().mean())}
    for size in sizes:
        at_init[f"dead on a batch of {size} (mean of {n} batches)"] = dying.dead_on_batches(h0, size, n=n)
    at_init["dead on the whole training set"] = stats.frac_dead(h0)
    return pd.Series(at_init)


def healthy_rate_sentence(rates: pd.Series, init_rate: float) -> str:
    """The relu_rate of the healthy settings (``rates``, one per run) against its value at init."""
    return ("In the two healthy settings the relu_rate of the last 20 steps ranges from "
            f"{rates.min():.2f} to {rates.max():.2f} over the seeds; at "
            f"initialization it was {init_rate:.2f}.")


@dataclass
class FirstSteps:
    """Why raw pixels kill: the mean x·x′ by pixel range, the first SGD step's shift of the
    pre-activations against their spread at init, and the dead share after each early step; the
    learning rate ``lr`` and pixel range [0, ``top``] they were measured at."""

    dots: dict[float, float]
    shift_median: float
    init_spread: float
    dead_after: pd.Series
    lr: float
    top: float


def first_steps(lr: float = 0.5, top: float = 255, seed: int = 0, pairs: int = 200) -> FirstSteps:
    """:class:`FirstSteps` of :func:`~helpers.dying.pixels_net` on digits in [0, ``top``] at ``lr``;
    the mean x·x′ over the first ``pairs`` training digits, for pixels in [0, 1] and [0, ``top``]."""
    check_number("lr", lr, minimum=0.0, strict=True)
    sub = {t: dying.scaled(t).x_train[:check_int("pairs", pairs, minimum=1)] for t in (1, top)}
    dots = {t: float((x @ x.T).mean()) for t, x in sub.items()}
    ds = dying.scaled(top)
    net = dying.pixels_net(seed=seed)
    z_before = net.hidden1.linear(ds.x_train).detach()
    train.fit(net, ds, steps=1, batch_size=256, lr=lr, seed=seed, progress=False)
    z_shift = (net.hidden1.linear(ds.x_train).detach() - z_before).abs()
    first = dying.run(seed=seed, steps=10, every=1, lr=lr, top=top)[1]
    return FirstSteps(dots, float(z_shift.median()), float(z_before.std()),
                      first[first.quantity == "dead"].set_index("step").value, lr, top)


def first_steps_sentence(fs: FirstSteps, steps: Sequence[int] = (0, 1, 2, 3, 5)) -> str:
    """:class:`FirstSteps` in words (raw bytes against pixels in [0, 1]), with the dead share
    after each of ``steps``."""
    small, big = min(fs.dots), max(fs.dots)
    return (
        f"The mean x·x′ over pairs of training digits is {fs.dots[small]:.1f} for pixels in [0, 1] and "
        f"{fs.dots[big]:,.0f} for raw bytes, {fs.dots[big] / fs.dots[small]:,.0f} times more "
        f"({fs.top:g}² = {fs.top ** 2:,.0f}). At learning rate {fs.lr:g} the first step alone moves the "
        f"pre-activations by {fs.shift_median:,.0f} (median over units and images; at initialization "
        f"they are of order {fs.init_spread:.0f}). The share of dead units after {_listed(steps)} steps: "
        + ", ".join(f"{fs.dead_after[s]:.2f}" for s in steps) + ".")


@torch.no_grad()
def hidden_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output of ``model.hidden1`` (activation included) on ``x``, without gradients."""
    return model.hidden1(x)


def squash_sentence(squash: pd.DataFrame) -> str:
    """The range over seeds (one run each) of sigmoid's test accuracy at lr 0.3 and tanh's at lr 0.1."""
    acc = squash.groupby(["activation", "lr"])["test accuracy"]
    low, high = acc.min(), acc.max()
    return (f"At learning rate 0.3 sigmoid reaches {low['sigmoid', 0.3]:.0%} to "
            f"{high['sigmoid', 0.3]:.0%} ({counted(int(acc.size()['sigmoid', 0.3]), 'seed')}); at 0.1 tanh reaches "
            f"{low['tanh', 0.1]:.0%} to {high['tanh', 0.1]:.0%}.")


class SquashStats(NamedTuple):
    """A sweep over activations and learning rates, by (activation, lr): test accuracy and frozen
    share grouped over seeds, the same per seed, and the median accuracy."""

    acc_at: object
    frozen_at: object
    acc_of: pd.Series
    frozen_of: pd.Series
    median_at: pd.Series


def squash_stats(squash: pd.DataFrame) -> SquashStats:
    """:class:`SquashStats` of a :func:`~helpers.dying.sweep` with columns activation, lr, test
    accuracy and frozen units."""
    acc_at = squash.groupby(["activation", "lr"])["test accuracy"]
    per_seed = squash.set_index(["activation", "lr"])
    return SquashStats(acc_at, squash.groupby(["activation", "lr"])["frozen units"], per_seed["test accuracy"],
                       per_seed["frozen units"], acc_at.median())


def death_onset(phase: pd.DataFrame, threshold: float = 0.5) -> dict:
    """Per input range ``top`` (ascending): the smallest learning rate of the phase diagram at which
    more than ``threshold`` of the units are dead, ``inf`` where there is none."""
    check_number("threshold", threshold, minimum=0.0, maximum=1.0)
    dead_at = phase.set_index(["lr", "top"]).dead
    lrs = sorted(phase.lr.unique().tolist())
    return {top: min([lr for lr in lrs if dead_at[lr, top] > threshold], default=math.inf)
            for top in sorted(phase.top.unique().tolist())}


def onset_sentence(phase: pd.DataFrame) -> str:
    """The onset of death per input range, and the dead share and accuracy at lr 0.03, [0, 64]."""
    at = phase.set_index(["lr", "top"])
    return (
        "Smallest learning rate (of the five) with more than half of the units dead after 100 steps: "
        + "; ".join(f"pixels in [0, {t}]: {'none' if math.isinf(r) else r}" for t, r in death_onset(phase).items())
        + f". At learning rate 0.03 with pixels in [0, 64], {at.dead[0.03, 64]:.0%} of the units are "
          f"dead, yet the net reaches a test accuracy of {at['test accuracy'][0.03, 64]:.2f}.")


def mild_table(mild: pd.DataFrame) -> pd.DataFrame:
    """Per activation of a :func:`~helpers.dying.sweep`: mean and worst test accuracy, mean dead share."""
    return mild.groupby("activation").agg(**{"test accuracy (mean)": ("test accuracy", "mean"),
                                             "test accuracy (worst seed)": ("test accuracy", "min"),
                                             "dead units (mean)": ("dead", "mean")})


class MildSummary(NamedTuple):
    """ReLU against Leaky ReLU by seed: each one's runs (indexed by seed), the mean accuracy of each,
    Leaky ReLU's accuracy per seed and its gain over ReLU per seed."""

    by_act: dict[str, pd.DataFrame]
    mean_acc: dict[str, float]
    leaky_acc: pd.Series
    gain: pd.Series


def mild_summary(mild: pd.DataFrame) -> MildSummary:
    """:class:`MildSummary` of a :func:`~helpers.dying.sweep` over ``relu`` and ``leaky_relu``."""
    by_act = {a: mild[mild.activation == a].set_index("seed") for a in ("relu", "leaky_relu")}
    leaky_acc = by_act["leaky_relu"]["test accuracy"]
    return MildSummary(by_act, {a: by_act[a]["test accuracy"].mean() for a in by_act}, leaky_acc,
                       leaky_acc - by_act["relu"]["test accuracy"])


def accuracy_grid(grid: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy of a one-seed :func:`~helpers.dying.sweep` by activation (rows) and lr
    (columns), NaN where the run diverged."""
    return (grid.assign(accuracy=grid["test accuracy"].mask(grid.diverged))
            .pivot(index="activation", columns="lr", values="accuracy"))


def mild_sentence(mild: pd.DataFrame) -> str:
    """ReLU against Leaky ReLU (``mild``: a sweep over both and several seeds) in words."""
    by_act = {a: mild[mild.activation == a].set_index("seed")["test accuracy"] for a in ("relu", "leaky_relu")}
    gain = by_act["leaky_relu"] - by_act["relu"]
    leaky = by_act["leaky_relu"]
    return (f"Mean test accuracy at lr 0.01 on raw pixels: ReLU {by_act['relu'].mean():.2f}, Leaky "
            f"ReLU {leaky.mean():.2f} (seeds from {leaky.min():.2f} to "
            f"{leaky.max():.2f}); Leaky ReLU ends ahead of ReLU in "
            f"{int((gain > 0).sum())} of the {len(gain)} seeds.")


#: The remedies of :data:`helpers.dying.REMEDIES` by what they do to the failure.
REMEDY_GROUPS: dict[str, list[str]] = {
    "fix the step size": ["lower learning rate (0.001)", "inputs divided by 255", "BatchNorm before the ReLU",
                          "Adam, lr 0.001"],
    "fail": ["none (the post's failure)", "He initialization", "positive bias init (0.1)", "GELU"],
    "leaky": ["Leaky ReLU (slope 0.01)", "PReLU", "RReLU"],
}


def remedy_rows(remedies: pd.DataFrame, group: str) -> pd.DataFrame:
    """The rows of a remedies :func:`~helpers.dying.sweep` (column ``remedy``) of one of
    :data:`REMEDY_GROUPS`, in the group's order."""
    names = REMEDY_GROUPS[check_choice("group", group, REMEDY_GROUPS)]
    return pd.concat([remedies[remedies.remedy == name] for name in names])


# -- dead units in an ordinary nn.Sequential ---------------------------------------------------------
def dead_curves(monitored: pd.DataFrame, watched: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Dead share by step (index) and layer (columns): per batch (a Monitor's ``frac_dead``), on the
    whole set (a :class:`~helpers.dying.DeadUnitWatch`'s ``dead``), and the whole-set one on the
    weights the batch figure saw.

    The Monitor's step s is measured in the forward pass of step s, on the weights after s − 1
    updates, which is the watch's step s − 1.
    """
    per_batch = monitored.query("quantity == 'frac_dead'").pivot(index="step", columns="layer", values="value")
    whole = watched.query("quantity == 'dead'").pivot(index="step", columns="layer", values="value")
    return per_batch, whole, whole.loc[per_batch.index - 1].set_axis(per_batch.index)


def inspected_sentence(seed: int, accuracy: float, whole_dead: pd.Series, excess: pd.DataFrame,
                       layer: str = "3", after: int = 200) -> str:
    """The inspected run in words: its accuracy, the dead share per layer at the end, and how far
    the per-batch figure of ``layer`` exceeds the whole-set one (``excess``) after step ``after``
    (to the last step of ``excess``)."""
    gap = excess[excess.index > after][layer]
    last = excess.index.max() - after
    return (f"Seed {seed}: test accuracy {accuracy:.3f}. Share of dead units on the whole training set at the "
            "end: " + ", ".join(f"module {name}: {value:.3f}" for name, value in whole_dead.items())
            + f". Over the last {last} steps the per-batch figure of module {layer} exceeds the whole-set one at the "
              f"same weights by {gap.mean():.3f} on average (from {gap.min():.3f} to {gap.max():.3f}).")


def row_gradients(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, index: int) -> torch.Tensor:
    """Summed ``|gradient|`` of each row of ``model[index].weight`` (a row per unit it feeds) for the
    cross-entropy over the whole of ``(x, y)``; the model is left as it was."""
    check_int("index", index, minimum=0)
    with monitor.preserved_state(model):
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        return model[index].weight.grad.abs().sum(1)


def dead_and_accuracy(runs: Iterable[train.FitResult], dead_by_layer: Callable[[nn.Module], pd.Series]) -> pd.DataFrame:
    """One row per run: its final test accuracy and the dead share of its worst layer, as
    ``dead_by_layer(model)`` measures it."""
    return pd.DataFrame([{"accuracy": r.final(), "dead (worst layer)": dead_by_layer(r.model).max()} for r in runs])


def fix_table(fixes: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per fix (name → frame of runs with columns accuracy, "dead (worst layer)"): the mean accuracy,
    its range over seeds and the mean dead share of the worst layer."""
    return pd.DataFrame({"accuracy (mean)": {k: f.accuracy.mean() for k, f in fixes.items()},
                         "accuracy (seeds)": {k: span(f.accuracy, ".3f") for k, f in fixes.items()},
                         "dead units, worst layer (mean)": {k: f["dead (worst layer)"].mean()
                                                            for k, f in fixes.items()}})


# -- exercises --------------------------------------------------------------------------------------
def clip_sentence(clipped: pd.DataFrame, x_norm: float) -> str:
    """Exercise 3's answer: clipped runs (columns dead, accuracy; one row per seed) and the median
    input norm."""
    return (f"**Answer.** No: over the {counted(len(clipped), 'seed')} the share of dead units ends at "
            f"{span(clipped.dead, '.2f')} and the test accuracy at {span(clipped.accuracy, '.3f')}, "
            "chance. A clipped step has norm at most lr × clip = 0.5 in weight space, and it still moves a "
            f"pre-activation by up to 0.5·‖x‖, where a raw digit has ‖x‖ ≈ {x_norm:,.0f} (median): far too "
            "much for the scale of the inputs. Clipping bounds the step in parameter space, not its "
            "effect, which the input scale multiplies.")


@torch.no_grad()
def silent_units(layer: nn.Module, x: torch.Tensor, share: float = 0.9) -> tuple[int, int]:
    """Units of ``layer``'s output on ``x`` that are zero on more than ``share`` of the rows but not
    on all of them, and units zero on every row (dead)."""
    zero_rate = (layer(x) == 0).float().mean(0)
    share = check_number("share", share, minimum=0.0, maximum=1.0)
    return int(((zero_rate > share) & (zero_rate < 1)).sum()), int((zero_rate == 1).sum())


def silent_sentence(silent: int, dead: int, share: float = 0.9) -> str:
    """Exercise 4's answer: silent units (zero on more than ``share`` of the images, as
    :func:`silent_units` counts them) against dead ones."""
    check_number("share", share, minimum=0.0, maximum=1.0)
    return (f"**Answer.** {silent} units are zero on more than {100 * share:g} % of the images without being dead, "
            f"against {dead} dead ones. They are specialized feature detectors that fire on a small "
            "share of the images and still receive gradient from those. A per-batch zero share near 1 for "
            "one unit is not death; only zero on every example is.")
