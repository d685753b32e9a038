"""The diagnosis chapter's squeeze-and-excitation case: training runs of :class:`helpers.senet.SENet`
probed in four ways of evaluating BatchNorm, what they show, and the chapter's sentences about them.

- :func:`train_senet` — one run, Adam at 10⁻³ with batches of 64, probed after each epoch by
  :class:`helpers.batchnorm.ModeProbe`;
- :func:`train_seeds` — runs on several seeds, as :class:`SeedRuns` (how far each evaluation mode
  falls below the recalibrated one, the std's trend, the last epoch's accuracies);
- :func:`train_variants` — one run of each variant of the architecture, as :class:`Variants`;
- :func:`plain_stacks` — plain stacks (no skip, no BatchNorm) with several gates: the report's
  gradient ratio at initialization and training runs, as :class:`PlainStacks`;
- :func:`train_eval_std` — the activations' spread in training and in evaluation mode;
- :func:`std_sentence`, :func:`gap_sentence`, :func:`recalibration_sentence`,
  :func:`variants_sentence`, :func:`plain_sentence` — the chapter's generated sentences.

The four modes are called ``TRAIN``, ``PYTORCH``, ``KERAS`` and ``RECAL``.

>>> log = pd.DataFrame({"epoch": [1, 2, 3], "mode": TRAIN, "accuracy": [0.5, 0.2, 0.6], "std": 1.0})
>>> Variants({"no BatchNorm": log}).largest_fall("no BatchNorm")
0.3
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

import pandas as pd
import torch
from torch import nn

from . import batchnorm, train
from ._checks import check_choice, check_int
from .health import HealthReport, report
from .report_cases import finding_value
from .senet import SENet
from .text import count_word, sci, span, superscript

TRAIN, PYTORCH, KERAS, RECAL = "train mode", "PyTorch 0.1", "Keras 0.01", "recalibrated"
MODES = [TRAIN, PYTORCH, KERAS, RECAL]
LATE = 4  # the falls below the recalibrated mode are measured from this epoch on


def train_senet(images, seed: int = 0, epochs: int = 12, **arch) -> tuple[SENet, pd.DataFrame]:
    """Adam (lr 10⁻³, batch 64) on ``images``; after each epoch, a probe of the middle block in
    the four modes (:class:`helpers.batchnorm.ModeProbe`, second average at Keras's momentum
    0.01). ``arch`` goes to :class:`helpers.senet.SENet`. Returns (net, one row per epoch and mode)."""
    check_int("seed", seed, minimum=0)
    check_int("epochs", epochs, minimum=1)
    torch.manual_seed(seed)
    net = SENet(**arch)
    per_epoch = len(images.x_train) // 64  # each epoch's last partial batch is dropped
    probe = batchnorm.ModeProbe(images, per_epoch, *net.watched(), momentum=0.01)
    train.fit(net, images, optimizer="adam", lr=1e-3, batch_size=64, steps=epochs * per_epoch,
              eval_every=epochs * per_epoch, seed=seed, callbacks=[probe], progress=False)
    return net, probe.frame()


@dataclass
class SeedRuns:
    """:func:`train_seeds`'s result: ``runs[seed] = (net, log)`` and the time they took."""

    runs: dict[int, tuple[nn.Module, pd.DataFrame]]
    seconds: float

    @cached_property
    def log(self) -> pd.DataFrame:
        """The probes of all runs, stacked, with a ``seed`` column."""
        logs = {s: lg for s, (_, lg) in self.runs.items()}
        return pd.concat(logs, names=["seed"]).reset_index(level=0)

    @cached_property
    def late(self) -> pd.DataFrame:
        """Test accuracy by (seed, epoch) from epoch ``LATE`` (4) on, one column per mode."""
        pivot = self.log.pivot_table(index=["seed", "epoch"], columns="mode", values="accuracy")
        return pivot[pivot.index.get_level_values("epoch") >= LATE]

    @cached_property
    def gap(self) -> pd.DataFrame:
        """Per seed and mode, the largest drop of test accuracy below the recalibrated mode's."""
        return self.late.rsub(self.late[RECAL], axis=0).groupby("seed").max()[MODES]

    @property
    def shown_seed(self) -> int:
        """The seed whose fall-back with Keras-style averages is the median."""
        return int(self.gap[KERAS].sort_values().index[len(self.gap) // 2])

    @cached_property
    def summaries(self) -> pd.DataFrame:
        """:func:`helpers.batchnorm.mode_summary` of each run, indexed by (seed, mode)."""
        return pd.concat({s: batchnorm.mode_summary(lg) for s, (_, lg) in self.runs.items()},
                         names=["seed", "mode"])

    @property
    def train_mode(self) -> pd.DataFrame:
        """The summaries' training-mode rows, one per seed."""
        return self.summaries.xs(TRAIN, level="mode")

    @cached_property
    def std(self) -> pd.DataFrame:
        """The middle block's std over the test set by epoch, columns (mode, seed)."""
        return self.log.pivot_table(index="epoch", columns=["mode", "seed"], values="std")

    @property
    def growth(self) -> pd.Series:
        """Per seed, the training-mode std at the last epoch over that at the first."""
        return self.std[TRAIN].iloc[-1] / self.std[TRAIN].iloc[0]

    @property
    def keras_share(self) -> pd.DataFrame:
        """By epoch and seed, the std with Keras-style averages over the training-mode std."""
        return self.std[KERAS] / self.std[TRAIN]

    @property
    def final(self) -> pd.DataFrame:
        """Test accuracy at the last epoch, by seed and mode."""
        last = self.log[self.log.epoch == self.log.epoch.max()]
        return last.pivot_table(index="seed", columns="mode", values="accuracy")[MODES]

    @property
    def worst(self) -> pd.DataFrame:
        """The lowest test accuracy from epoch ``LATE`` (4) on, by seed and mode."""
        return self.late.groupby("seed").min()


def train_seeds(images, seeds: Iterable[int] = range(3), epochs: int = 12) -> SeedRuns:
    """:func:`train_senet` on each seed, timed."""
    start = time.perf_counter()
    runs = {seed: train_senet(images, seed=seed, epochs=epochs) for seed in seeds}
    return SeedRuns(runs, time.perf_counter() - start)


@dataclass
class Variants:
    """:func:`train_variants`'s result: the probes of one run of each variant, by name."""

    logs: dict[str, pd.DataFrame]

    @cached_property
    def summary(self) -> pd.DataFrame:
        """:func:`helpers.batchnorm.mode_summary` of each run, indexed by (net, mode)."""
        return pd.concat({name: batchnorm.mode_summary(lg) for name, lg in self.logs.items()},
                         names=["net", "mode"])

    @property
    def trained_as(self) -> pd.DataFrame:
        """The summaries' training-mode rows, one per variant."""
        return self.summary.xs(TRAIN, level="mode")

    def lowest(self, net: str) -> pd.Series:
        """Variant ``net``'s lowest test accuracy from epoch 6 on, by mode."""
        return self.summary.loc[check_choice("net", net, self.logs), "lowest, epochs 6+"]

    def largest_fall(self, net: str) -> float:
        """Variant ``net``'s largest fall of training-mode test accuracy below its best so far."""
        log = self.logs[check_choice("net", net, self.logs)]
        acc = log[log["mode"] == TRAIN].accuracy
        return float((acc.cummax() - acc).max())


def train_variants(images, variants: Mapping[str, dict]) -> Variants:
    """One :func:`train_senet` run (seed 0) for each variant: name → :class:`helpers.senet.SENet` arguments."""
    return Variants({name: train_senet(images, seed=0, **arch)[1] for name, arch in variants.items()})


@dataclass
class PlainStacks:
    """:func:`plain_stacks`'s result: the report at initialization and ``table``, one row per net
    and seed (first/last gradient at init, accuracy after ``epochs``, best epoch's accuracy), for
    stacks of ``n_blocks`` blocks."""

    reports: dict[str, HealthReport]
    table: pd.DataFrame
    epochs: int
    n_seeds: int
    n_blocks: int

    @property
    def after(self) -> str:
        return f"accuracy after {self.epochs} epochs"

    best = "best epoch's accuracy"

    @property
    def ratios(self) -> pd.Series:
        """Per net, the report's first/last gradient ratio (its ``vanishing`` finding; NaN if none)."""
        return pd.Series({label: finding_value(r, "vanishing") for label, r in self.reports.items()})

    @property
    def gated(self) -> pd.DataFrame:
        """The runs of the sigmoid-gated stack."""
        return self.table[self.table.net == "sigmoid gate"]

    @property
    def others(self) -> pd.DataFrame:
        """The runs of the other stacks (no sigmoid gate)."""
        return self.table[self.table.net != "sigmoid gate"]

    @property
    def shrink(self) -> float:
        """How many times smaller sigmoid gates make the gradient ratio than 2·sigmoid gates."""
        return float(self.ratios["2·sigmoid gate"] / self.ratios["sigmoid gate"])

    def styled(self):
        """The table, formatted for display."""
        return self.table.style.hide(axis="index").format(
            {"first/last gradient at init": "{:.1e}", self.after: "{:.3f}", self.best: "{:.3f}"})


def plain_stacks(images, gates: Mapping[str, str | None], seeds: Iterable[int] = range(3),
                 epochs: int = 12, n_blocks: int = 6) -> PlainStacks:
    """For each gate (label → :class:`helpers.senet.SENet`'s ``gate``; labels ``"sigmoid gate"`` and
    ``"2·sigmoid gate"`` are compared), a plain stack of ``n_blocks`` blocks without skip or
    BatchNorm: the report at initialization (seed 0, Adam 10⁻³), and a run on each seed."""
    check_int("epochs", epochs, minimum=1)
    check_int("n_blocks", n_blocks, minimum=1)
    seeds = list(seeds)
    stacks = PlainStacks({}, pd.DataFrame(), epochs, len(seeds), n_blocks)
    rows = []
    for label, gate in gates.items():
        arch = dict(n_blocks=n_blocks, bn=False, residual=False, gate=gate)
        torch.manual_seed(0)
        stacks.reports[label] = report(SENet(**arch), images, lr=1e-3, optimizer="adam")
        for seed in seeds:
            lg = train_senet(images, seed=seed, epochs=epochs, **arch)[1]
            rows.append({"net": label, "seed": seed, stacks.after: lg.accuracy.iloc[-1],
                         stacks.best: lg.accuracy.max()})
    stacks.table = pd.DataFrame(rows)
    stacks.table.insert(2, "first/last gradient at init", stacks.table.net.map(stacks.ratios))
    return stacks


def train_eval_std(net: nn.Module, images) -> pd.DataFrame:
    """Each activation layer's std that the report finds in training and in evaluation mode."""
    spread = {f"{mode} mode": report(net, images, mode=mode).layers.set_index("layer").act_std
              for mode in ("train", "eval")}
    return pd.DataFrame(spread).dropna()


def std_sentence(runs: SeedRuns) -> str:
    """The middle block's std over the seeds: in training mode, and with Keras-style averages."""
    tm = runs.train_mode
    return (
        f"In training mode the middle layer ends at {span(tm['std: last / max'], '.0%')} of "
        f"its largest spread over the seeds (it grew by {span(runs.growth - 1, '.0%')} since the first "
        f"epoch), and the net ends at {span(tm['final accuracy'], '.0%')} test accuracy. "
        f"Through the Keras-style averages the same layer's std is "
        f"{span(runs.keras_share.iloc[0], '.0%')} of training mode's after the first epoch and "
        f"{span(runs.keras_share.iloc[-1], '.0%')} after the last.")


def gap_sentence(runs: SeedRuns) -> str:
    """How far each way of evaluating falls below the recalibrated one, over the seeds."""
    def points(mode: str) -> str:
        return f"{100 * runs.gap[mode].min():.0f}–{100 * runs.gap[mode].max():.0f}"

    return (
        f"On every seed, the Keras-style running averages cost {points(KERAS)} points of test accuracy "
        f"at some epoch, PyTorch's {points(PYTORCH)}, while evaluating with batch statistics never "
        f"falls more than {100 * runs.gap[TRAIN].max():.0f} points below the recalibrated averages.")


def recalibration_sentence(runs: SeedRuns) -> str:
    """What recalibrating the averages gains over the Keras-style ones, and where it ends."""
    gain = (runs.worst[RECAL] - runs.worst[KERAS]).min()
    final = runs.final[RECAL]
    return (
        f"Recalibrating raises the worst test accuracy of epochs {LATE}–{runs.log.epoch.max()} above "
        f"the Keras-style averages' by at least **{gain:.2f}** on every seed; the recalibrated "
        f"accuracy at the last epoch is {final.min():.2f}–{final.max():.2f}.")


def variants_sentence(variants: Variants, bn_final: pd.Series) -> str:
    """The ``"6 blocks"`` and ``"no BatchNorm"`` variants against the BatchNorm nets' final
    accuracies ``bn_final`` (one per seed)."""
    no_bn_epochs = variants.logs["no BatchNorm"].epoch.max()
    deep, no_bn = variants.trained_as.loc["6 blocks"], variants.trained_as.loc["no BatchNorm"]
    low = variants.lowest("6 blocks")
    return (
        f"Depth does not bring the collapse either: the six-block net also keeps its activations "
        f"({100 * deep['std: last / max']:.0f} % of the largest spread at the end) and reaches "
        f"{deep['final accuracy']:.3f} test accuracy; it too falls back in evaluation mode with "
        f"Keras-style averages (lowest accuracy from epoch 6 on: {low[KERAS]:.3f}, against "
        f"{low[RECAL]:.3f} recalibrated). Without BatchNorm there is no such thing as a stale "
        f"average: the activations do not shrink either ({100 * no_bn['std: last / max']:.0f} % of "
        f"the largest spread at the end), and the net learns more slowly "
        f"({no_bn['final accuracy']:.3f} after {no_bn_epochs} epochs, against "
        f"{span(bn_final, '.3f')} for the BatchNorm nets of the {count_word(len(bn_final))} "
        f"seeds) but "
        f"never falls back (at most {100 * variants.largest_fall('no BatchNorm'):.0f} points below its "
        f"best epoch so far).")


def plain_sentence(stacks: PlainStacks) -> str:
    """The plain stacks' gradient ratios at initialization and how their runs trained."""
    ratios, shrink, others = stacks.ratios, stacks.shrink, stacks.others
    blocks, n_nets = count_word(stacks.n_blocks), count_word(len(stacks.reports))
    power = f"2{superscript(stacks.n_blocks)} = {2 ** stacks.n_blocks}"
    predicted = (f"close to the {power} that {blocks} gates at 0.5 predict"
                 if 2 ** stacks.n_blocks / 2 < shrink < 2 ** stacks.n_blocks * 2
                 else f"where {blocks} gates at 0.5 would predict {power}")
    n_flagged = int(ratios.notna().sum())
    flagged = (f"all {n_nets}" if n_flagged == len(ratios)
               else f"{count_word(n_flagged)} of the {n_nets}")
    slow = others[others[stacks.after] < 0.2]
    lagging = f"; every one of these {len(others)} runs is above 20 %"
    if len(slow):
        slow_runs = ", ".join(f"{net} seed {seed}" for net, seed in zip(slow.net, slow.seed))
        lagging = (f"; {len(slow)} of these {len(others)} runs {'is' if len(slow) == 1 else 'are'} "
                   f"still below 20 % ({slow_runs}): all {n_nets} stacks start close to the edge, and "
                   f"when a net leaves chance varies from seed to seed")
    return (
        f"In the plain {blocks}-block stack the report flags vanishing gradients for {flagged} nets "
        f"(PyTorch's default initialization alone shrinks the signal: the first layer's gradient is "
        f"{sci(ratios['2·sigmoid gate'])} of the last one's with the 2·sigmoid gate, "
        f"{sci(ratios['no SE'])} without SE units), but with sigmoid gates it is "
        f"{sci(ratios['sigmoid gate'])}, {shrink:.0f} times smaller again, {predicted}. In "
        f"{stacks.epochs} epochs of training the sigmoid-gated net never leaves chance on any of the "
        f"{stacks.n_seeds} seeds (its best epoch: {stacks.gated[stacks.best].max():.3f}), while the "
        f"nets without sigmoid gates learn, slowly: after {stacks.epochs} epochs their median test "
        f"accuracy over the {len(others)} runs is {others[stacks.after].median():.2f}, the best "
        f"{others[stacks.after].max():.2f}{lagging}.")
