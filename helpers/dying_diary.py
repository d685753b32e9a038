r"""The debugging diary's net that stalls on one fixed batch, in the dead-ReLU chapter.

The nets are :func:`helpers.dying.diary_net`'s; this module trains them over variants and seeds
and says what their runs show:

- :func:`diary_runs` — full-batch SGD on one fixed batch, every variant and seed;
- :func:`diary_sentence` — accuracy, the fall of the gradient sum, the leaky ReLU overflows;
- :func:`curve_gap`, :func:`shown_seed_sentence` — the gradient logs of the seed shown;
- :func:`fit_table_style`, :func:`diary_summary` — the runs' table, and what the chapter asserts;
- :func:`end_snapshots`, :func:`zero_shares`, :func:`alive_sentence` — the ReLU outputs at the
  end, and the units left.

>>> import torch
>>> x, y = torch.randn(16, 64), torch.randint(0, 10, (16,))
>>> runs = diary_runs((x, y), {"ReLU": [0], "tanh": [1]}, steps=2)
>>> sorted(runs)
[('ReLU', 0), ('tanh', 1)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import pandas as pd
import torch
from pandas.io.formats.style import Styler
from torch import nn

from . import monitor, train
from ._checks import check_int, check_number
from .dying import diary_net
from .text import counted, span


def diary_runs(data, seeds: Mapping[str, Sequence[int]], steps: int = 300,
               lr: float = 0.5) -> dict[tuple[str, int], train.FitResult]:
    """Full-batch SGD on ``data`` (an ``(x, y)`` pair) for every variant of ``seeds`` (variant →
    its seeds), keyed ``(variant, seed)``."""
    check_int("steps", steps, minimum=1)
    check_number("lr", lr, minimum=0.0, strict=True)
    return {(v, s): train.fit(diary_net(v, s), data, steps=steps, batch_size=None, lr=lr, seed=s, progress=False)
            for v in seeds for s in seeds[v]}


def fit_table_style(summary: pd.DataFrame) -> Styler:
    """:func:`~helpers.dying.fit_table` by variant and seed, styled; a diverged run's accuracy and
    final gradient sum (which it does not have) show as "–"."""
    shown = summary.drop(columns="status").set_index(["variant", "seed"])
    shown.loc[shown["diverged at step"].notna(), ["accuracy on the batch", "final gradient sum"]] = None
    return (shown.style.format("{:.2g}", na_rep="–")
            .format({"accuracy on the batch": "{:.3f}", "diverged at step": "{:.0f}"}, na_rep="–")
            .set_caption("After 300 steps; – where the loss stopped being finite (the run diverged)"))


class DiarySummary(NamedTuple):
    """The diary's runs as the chapter asserts them: accuracy by variant, the ReLU and leaky ReLU
    rows, the most frequent class's share, ReLU's fall of the gradient sum, leaky ReLU's overflows."""

    acc: dict[str, pd.Series]
    relu: pd.DataFrame
    leaky: pd.DataFrame
    majority: float
    fall: pd.Series
    overflowed: pd.Series


def diary_summary(summary: pd.DataFrame, y: torch.Tensor) -> DiarySummary:
    """:class:`DiarySummary` of a :func:`~helpers.dying.fit_table` of the runs on the batch with labels ``y``."""
    acc = {v: summary[summary.variant == v]["accuracy on the batch"] for v in summary.variant.unique()}
    relu, leaky = (summary[summary.variant == v] for v in ("ReLU", "leaky ReLU"))
    return DiarySummary(acc, relu, leaky, float(torch.bincount(y).max()) / len(y),
                        relu["largest gradient sum"] / relu["final gradient sum"], leaky.status == "diverged")


def _plural(n: int, word: str) -> str:
    return word + ("s" if n > 1 else "")


def diary_sentence(summary: pd.DataFrame, majority: float) -> str:
    """What :func:`~helpers.dying.fit_table` of the diary's runs shows: ReLU's stall (against the
    most frequent class's share ``majority``), the gradient-blocked net, and leaky ReLU's overflows."""
    check_number("majority", majority, minimum=0.0, maximum=1.0)
    by = {v: summary[summary.variant == v] for v in ("ReLU", "ReLU, gradient blocked", "leaky ReLU")}
    relu, leaky = by["ReLU"], by["leaky ReLU"]
    fall = relu["largest gradient sum"] / relu["final gradient sum"]
    overflowed = leaky.status == "diverged"
    steps = ", ".join(str(int(k)) for k in leaky[overflowed]["diverged at step"])
    rest = leaky[~overflowed]
    leaky_text = f"the loss stopped being finite in {int(overflowed.sum())} of {len(leaky)} seeds"
    if overflowed.any():
        leaky_text += f", at {_plural(overflowed.sum(), 'step')} {steps}"
    if len(rest):
        leaky_text += (f"; the {_plural(len(rest), 'other')} ended at accuracy "
                       f"{span(rest['accuracy on the batch'], '.2f')} after a peak gradient sum of "
                       f"{span(rest['largest gradient sum'], ',.0f')}")
    return (
        f"ReLU: accuracy {span(relu['accuracy on the batch'], '.3f')} over the "
        f"{counted(len(relu), 'seed')} (the most frequent "
        f"class is {majority:.3f} of the batch); the gradient sum ends at least {fall.min():,.0f} times below "
        f"its peak. Gradient blocked: accuracy {span(by['ReLU, gradient blocked']['accuracy on the batch'], '.2f')}"
        f". Leaky ReLU: {leaky_text}.")


def curve_gap(a: train.FitResult, b: train.FitResult, quantity: str = "grad_abs_sum") -> float:
    """Largest relative difference ``|a − b| / |a|`` of two runs' logged ``quantity``, step by step."""
    ca, cb = (r.curve(quantity).set_index("step").value for r in (a, b))
    return float(((ca - cb).abs() / ca.abs()).max())


def shown_seed_sentence(seed: int, leaky_step: int | None, bn_gap: float, seeds: int) -> str:
    """Why ``seed`` is shown (its leaky ReLU run's overflow step, the earliest of ``seeds``), and the
    largest relative gap between the two BatchNorm curves."""
    overflow_text = (f"its leaky ReLU run overflowed at step {leaky_step}, the earliest of the "
                     f"{seeds} seeds. " if leaky_step else "no leaky ReLU run overflowed. ")
    return (f"Seed {seed} is shown: {overflow_text}The two BatchNorm curves nearly "
            f"coincide: at no step do they differ by more than {bn_gap:.0%}.")


def end_snapshots(models: Mapping[str, nn.Module], x: torch.Tensor, hist_range: tuple[float, float] = (-0.25, 4.0),
                  bins: int = 34) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`~helpers.monitor.snapshot` of each model (name → model) on ``x``: the statistics and
    the histograms of all of them, with a column ``variant``."""
    snaps = {v: monitor.snapshot(m, x, hist_range=hist_range, bins=check_int("bins", bins, minimum=1))
             for v, m in models.items()}
    stats, hists = (pd.concat([snap[i].assign(variant=v) for v, snap in snaps.items()]) for i in (0, 1))
    return stats, hists


def zero_shares(stats: pd.DataFrame) -> pd.DataFrame:
    """The ``frac_zero`` and ``frac_dead`` rows of :func:`end_snapshots`' statistics, by (variant,
    quantity) and layer."""
    return stats[stats.quantity.isin(["frac_zero", "frac_dead"])].pivot_table(
        index=["variant", "quantity"], columns="layer", values="value")


def alive_sentence(dead_share: pd.Series, seed: int, width: int = 64) -> str:
    """The units still alive per layer (``dead_share``: the dead share by layer of a net of
    ``width``), and, if a layer has none left, what that does to the net's output."""
    alive = ((1 - dead_share) * check_int("width", width, minimum=1)).round().astype(int)
    cut_off = [layer.split(".")[0] for layer, n in alive.items() if n == 0]
    return (f"Units of the stalled ReLU net (seed {seed}) still alive on the batch, per hidden layer "
            f"(of {width}): " + ", ".join(f"{layer.split('.')[0]}: {n}" for layer, n in alive.items()) + "."
            + (f" In {cut_off[0]} no unit is left: every image reaches the layers above as the same "
               "all-zero vector, so the net gives every image the same logits." if cut_off else ""))

