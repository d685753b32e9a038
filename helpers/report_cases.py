"""The diagnosis chapter's nets run through the health report: a healthy net, six failing nets of
chapters 1 to 4 with their fixes, and the exercises' measurements.

- :func:`mlp_net`, :func:`dead_relu_net` — the chapter's MLPs on the 8 × 8 digits;
- :class:`Case`, :func:`six_cases` — each failure of chapters 1–4 and its fix;
- :func:`run_cases` — the report on every failing net and its fix, and ``steps`` steps of
  training, as a :class:`CaseRuns` (reports, a table, accuracies, the explorer's figure);
- :func:`healthy_sentence`, :func:`accuracy_sentence`, :func:`vanishing_sentence`,
  :func:`exploding_sentence` — the chapter's generated sentences about them;
- :func:`finding_value`, :func:`report_tables`, :func:`threshold_table` — read a report;
- :func:`dead_share`, :func:`saturation_by_input_scale` — the exercises' measurements.

>>> net = mlp_net(3, "tanh", "xavier_normal")
>>> len([m for m in net.modules() if isinstance(m, torch.nn.Linear)])
4
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import init, models, train
from ._checks import check_choice, check_int
from .health import HealthReport, report
from .text import count_word, sci

VERSIONS = ("failing", "fixed")
def mlp_net(depth: int, activation: str, scheme: str | None = None, seed: int = 0, norm: str | None = None,
            n_features: int = 64, **kwargs) -> nn.Module:
    """A 64-wide MLP for the digits (``n_features`` inputs, 10 classes), seeded with ``seed``;
    ``scheme=None`` keeps PyTorch's default initialization, else :func:`helpers.init.init_` with
    ``kwargs`` (``std``, ``scale``, ...)."""
    check_int("depth", depth, minimum=1)
    torch.manual_seed(seed)
    net = models.mlp(n_features, 10, depth=depth, activation=activation, norm=norm)
    return init.init_(net, scheme, activation=activation, seed=seed, **kwargs) if scheme else net


def dead_relu_net(dataset, steps: int = 30, lr: float = 0.5) -> nn.Module:
    """A net like the unnormalized-pixels post's (one hidden layer, here 256 ReLUs with PyTorch's
    default init), after ``steps`` steps of SGD at ``lr`` (batches of 256) on ``dataset``."""
    check_int("steps", steps, minimum=1)
    torch.manual_seed(0)
    net = models.mlp(64, 10, depth=1, width=256)
    train.fit(net, dataset, steps=steps, lr=lr, batch_size=256, seed=0, progress=False)
    return net


class Case(NamedTuple):
    """One failure and its fix: labels, builders (no argument, a fresh net), the learning rate,
    the findings the failing net is expected to get, and the data each version runs on."""

    setup: str
    failing: Callable[[], nn.Module]
    fix: str
    fixed: Callable[[], nn.Module]
    lr: float
    expected: set[str]
    data: tuple


def six_cases(digits, raw, unit) -> dict[str, Case]:
    """The chapter's six failing nets and their fixes, by name; ``digits`` standardized, ``raw``
    the 0–255 pixels and ``unit`` the same divided by 255 (for the dead-ReLU case)."""
    kaiming = partial(mlp_net, 10, "relu", "kaiming_normal")
    tanh_normal = partial(mlp_net, 10, "tanh", "normal")
    xavier = partial(mlp_net, 10, "tanh", "xavier_normal")
    std = (digits, digits)
    return {
        "vanishing": Case("10 sigmoid layers, default init", partial(mlp_net, 10, "sigmoid"),
                          "ReLU + Kaiming init", kaiming, 0.1, {"vanishing"}, std),
        "exploding": Case("10 ReLU layers, Kaiming × 2", partial(kaiming, scale=2.0),
                          "Kaiming init at scale 1", kaiming, 0.1, {"exploding"}, std),
        "saturating init": Case("10 tanh layers, N(0, 1)", partial(tanh_normal, std=1.0),
                                "Xavier init", xavier, 0.1, {"saturated"}, std),
        "collapsing init": Case("10 tanh layers, N(0, 0.01²)", partial(tanh_normal, std=0.01),
                                "Xavier init", xavier, 0.1, {"collapsed"}, std),
        "dead ReLU": Case("raw 0-255 pixels, SGD lr 0.5", partial(dead_relu_net, raw),
                          "inputs divided by 255", partial(dead_relu_net, unit), 0.5, {"dead"},
                          (raw, unit)),
        "no normalization": Case("20 ReLU layers, default init", partial(mlp_net, 20, "relu"),
                                 "BatchNorm after each linear layer",
                                 partial(mlp_net, 20, "relu", norm="batch"), 0.02,
                                 {"vanishing", "collapsed"}, std),
    }


@dataclass
class CaseRuns:
    """:func:`run_cases`'s result: the ``cases``, ``reports[case, version]`` and ``table``, one
    row per case and version (setup, findings, training status, test accuracy after ``steps``
    steps of training)."""

    cases: dict[str, Case]
    reports: dict[tuple[str, str], HealthReport]
    table: pd.DataFrame
    steps: int

    def _wide(self, column: str) -> pd.DataFrame:
        return self.table.set_index(["case", "version"])[column].unstack().loc[list(self.cases)]

    @cached_property
    def accuracy(self) -> pd.DataFrame:
        """Test accuracy after training, one row per case and columns ``failing`` and ``fixed``."""
        return self._wide("test accuracy")

    @cached_property
    def status(self) -> pd.DataFrame:
        """Training status (``"ok"`` or ``"diverged"``), laid out as :attr:`CaseRuns.accuracy`."""
        return self._wide("training")

    def flagged(self) -> list[str]:
        """The cases whose failing net gets at least one of its expected findings."""
        return [name for name, c in self.cases.items() if c.expected & self.reports[name, "failing"].problems]

    def clean(self) -> list[str]:
        """The cases whose fixed net gets a clean report."""
        return [name for name in self.cases if self.reports[name, "fixed"].ok]

    def figure(self, case: str, version: str):
        """The one-figure summary of the report on one of the nets."""
        check_choice("case", case, self.cases)
        check_choice("version", version, VERSIONS)
        label = self.cases[case].setup if version == "failing" else self.cases[case].fix
        return self.reports[case, version].plot(title=f"{case}, {version}: {label}")


def run_cases(cases: dict[str, Case], steps: int = 300) -> CaseRuns:
    """For each case and version, build the net, run the report on its data at the case's
    learning rate, and train a copy for ``steps`` SGD steps (test accuracy at the end)."""
    check_int("steps", steps, minimum=1)
    reports, rows = {}, []
    for name, case in cases.items():
        versions = {"failing": (case.failing, case.setup, case.data[0]),
                    "fixed": (case.fixed, case.fix, case.data[1])}
        for version, (make, label, d) in versions.items():
            net = make()
            reports[name, version] = r = report(net, d, lr=case.lr)
            fitted = train.fit(copy.deepcopy(net), d, steps=steps, lr=case.lr, seed=0, eval_every=steps,
                               progress=False)
            rows.append({"case": name, "version": version, "setup": label,
                         "findings": ", ".join(sorted(r.problems)) or "none",
                         "training": fitted.status, "test accuracy": fitted.final("accuracy")})
    return CaseRuns(cases, reports, pd.DataFrame(rows), steps)


def finding_value(rep: HealthReport, problem: str) -> float:
    """The measured value of ``rep``'s first finding of ``problem``, NaN if it has none."""
    return next((f.value for f in rep.findings if f.problem == problem), np.nan)


def report_tables(rep: HealthReport) -> tuple:
    """The report's activation rows and weight rows (indexed by layer), and the two styled tables
    the chapter shows of them: ``(act_rows, weight_rows, act_table, weight_table)``."""
    act_rows = rep.layers[rep.layers.kind == "activation"].set_index("layer")
    weight_rows = rep.layers[rep.layers.kind == "weight"].set_index("layer")
    act_table = (act_rows[["act_std", "example_std", "frac_dead"]]
                 .set_axis(["std", "std across examples", "dead share"], axis=1)
                 .style.format("{:.3f}").set_caption("Activation layers (after each ReLU)"))
    weight_table = (weight_rows[["grad_rms", "update_ratio"]]
                    .set_axis(["gradient RMS", "update ratio"], axis=1)
                    .style.format("{:.4f}").set_caption("Weight layers (linear)"))
    return act_rows, weight_rows, act_table, weight_table


def threshold_table(rep: HealthReport) -> pd.DataFrame:
    """The report's thresholds as a one-column table, a band written ``low to high``."""
    return pd.Series({name: f"{value[0]:g} to {value[1]:g}" if isinstance(value, tuple) else f"{value:g}"
                      for name, value in rep.thresholds.items()}, name="default").to_frame()


def healthy_sentence(rep: HealthReport) -> str:
    """What the summary figure of a healthy ReLU net shows, with its numbers and thresholds."""
    act_rows, weight_rows, _, _ = report_tables(rep)
    t = rep.thresholds
    grad, ratio = weight_rows.grad_rms, weight_rows.update_ratio
    return (
        f"All four panels stay on the healthy side of their thresholds. The spread across examples "
        f"shrinks with depth, from {act_rows.example_std.iloc[0]:.2f} after the first layer to "
        f"{act_rows.example_std.iloc[-1]:.2f} after the last, far above the collapse threshold "
        f"{t['min_example_std']:g}. Some units are dead, at most "
        f"{100 * act_rows.frac_dead.max():.3g} % of a layer ({act_rows.frac_dead.idxmax()}), below the "
        f"{100 * t['dead_fraction']:.0f} % threshold. The weight gradients' RMS ranges from "
        f"{grad.min():.2g} ({grad.idxmin()}) to {grad.max():.2g} ({grad.idxmax()}), a factor of "
        f"{grad.max() / grad.min():.1f}, where a factor of {t['exploding_ratio']:g} would flag "
        f"vanishing or exploding gradients. Every update ratio lies between {ratio.min():.2g} and "
        f"{ratio.max():.2g}: {ratio.min() / 1e-3:.0f} to {ratio.max() / 1e-3:.0f} times the 10⁻³ rule "
        f"of thumb at this learning rate, inside the band ({t['update_ratio_range'][0]:g} to "
        f"{t['update_ratio_range'][1]:g}) that the report accepts.")


def accuracy_sentence(acc: pd.DataFrame, steps: int, diverged: str = "exploding",
                      lagging: str = "saturating init") -> str:
    """The accuracies after ``steps`` steps of training (:attr:`CaseRuns.accuracy` and
    ``CaseRuns.steps``) in words: the failing nets at chance (all but ``diverged`` and
    ``lagging``), the ``lagging`` one against its fix, the fixes."""
    check_int("steps", steps, minimum=1)
    check_choice("diverged", diverged, acc.index)
    check_choice("lagging", lagging, acc.index)
    chance = acc.failing.drop([lagging, diverged])
    fail, fix = acc.loc[lagging, "failing"], acc.loc[lagging, "fixed"]
    return (
        f"{len(chance)} of the failing nets are still at chance level (10 classes: about 0.1) after "
        f"{steps} steps, at {chance.min():.2f}–{chance.max():.2f}; the exploding one diverged (its loss "
        f"overflowed at once, so it has no meaningful accuracy), and the saturated tanh net reaches "
        f"{fail:.2f} against its fix's {fix:.2f}, {100 * (fix - fail):.0f} points "
        f"behind. The fixed nets reach {acc.fixed.min():.2f}–{acc.fixed.max():.2f}.")


def vanishing_sentence(rep: HealthReport) -> str:
    """The deep sigmoid net's findings (``collapsed``, ``vanishing``, ``update_small``, those it
    has), one cause, with its gradient and update ratios; a ValueError for any other finding."""
    others = sorted(rep.problems - {"collapsed", "vanishing", "update_small"})
    if others:
        raise ValueError(f"the report's findings {others} are not the vanishing signal's")
    updates = rep.layers[rep.layers.kind == "weight"].update_ratio
    clauses = {
        "collapsed": "the signal collapses forward (the outputs of the later layers no longer depend "
                     "on the input)",
        "vanishing": f"the gradient vanishes backward (the first layer's RMS is "
                     f"{sci(finding_value(rep, 'vanishing'))} of the last one's)",
        "update_small": f"so the first layers' update ratios are far below 10⁻³, down to "
                        f"{sci(updates.min())}",
    }
    found = [clauses[p] for p in clauses if p in sorted(rep.problems)]
    if not found:
        raise ValueError("the report has none of the vanishing signal's findings")
    listed = found[0] if len(found) == 1 else f"{', '.join(found[:-1])}, and {found[-1]}"
    plural = "s" if len(found) > 1 else ""
    return f"{count_word(len(found)).capitalize()} finding{plural} for one cause: {listed}."


def exploding_sentence(rep: HealthReport) -> str:
    """Where the exploding net's flags sit in its figure, and why the weight gradients carry none."""
    exploding = next(f for f in rep.findings if f.problem == "exploding")
    grad = rep.layers.set_index("layer").grad_rms
    return (
        f"In the exploding net's figure the red cross of the *exploding* flag sits on the backward "
        f"signal (top left, triangles): the gradient that reaches each activation layer's outputs, "
        f"the report table's `act_grad_rms` column. At the first activation layer ({exploding.layer}) "
        f"it is {exploding.value:.0f} times that at the last, above the threshold of "
        f"{rep.thresholds['exploding_ratio']:g}, while the weight gradients (bottom left) "
        f"stay within a factor of {grad.max() / grad.min():.0f} of each other and carry no cross: with "
        f"too large an initialization the activations grow forward as fast as this signal shrinks, "
        f"and the two cancel in the weight gradients. The crosses on the update ratios are the "
        f"`update_large` finding, and the loss at the start, {rep.loss:.3g} against ln 10 = "
        f"{np.log(10):.2f} for ten balanced classes, is the `init_loss` finding: outputs that large "
        f"are confidently wrong.")


def dead_share(net: nn.Module, dataset, n_batches: int, batch_size: int, layer: str = "hidden1.act") -> float:
    """The dead share of ``layer`` that the report finds over ``n_batches`` × ``batch_size``
    examples of ``dataset``."""
    check_int("n_batches", n_batches, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    layers = report(net, dataset, n_batches=n_batches, batch_size=batch_size).layers
    return float(layers.set_index("layer").frac_dead[layer])


def saturation_by_input_scale(net: nn.Module, dataset, factors=(1, 10, 100), first: str = "hidden1.act"
                              ) -> pd.DataFrame:
    """The report on ``net`` with the training inputs multiplied by each factor: the saturated
    share of layer ``first`` and the largest of the other layers', and whether it flags saturation."""
    rows = []
    for factor in factors:
        r = report(net, (dataset.x_train * factor, dataset.y_train))
        sat = r.layers.set_index("layer").frac_saturated.dropna()
        rows.append({"inputs ×": factor, "saturated, first layer": sat[first],
                     "saturated, layers 2–10 (most)": sat.drop(first).max(),
                     "flagged": "yes" if "saturated" in r.problems else "no"})
    return pd.DataFrame(rows)
