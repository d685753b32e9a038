"""The numbers the vanishing and exploding gradients chapter reports, each experiment's in one call.

Each function takes what :mod:`helpers.signals` measured (tidy profiles, training runs, a loss scan)
and returns a small frame or dataclass that the chapter prints, claims and describes
(:mod:`helpers.signals_text` writes its sentences):

- :func:`slopes` — the activations' largest slopes and the sigmoid's tail;
- :func:`flow_ratios`, :func:`backward_factors`, :func:`init_checks`, :func:`first_to_last_grid`,
  :func:`sigmoid_sizing` — first-to-last gradient ratios and per-layer factors at initialization;
- :func:`run_layers`, :func:`divergence`, :func:`rescue_table`, :func:`nan_steps`,
  :func:`remedy_details` — what training runs did;
- :func:`cliff_edge`, :func:`wall_point` — the one-unit recurrence's cliff.

>>> b = np.linspace(-1, 1, 201)
>>> scanned = pd.DataFrame({"b": b, "loss": np.where(b < 0, 5.0, 1.0), "|dL/db|": 1 + 99 * (abs(b) < 0.005)})
>>> edge = cliff_edge(scanned)
>>> round(edge.b, 6), edge.left_loss / edge.right_loss, edge.spike
(0.0, 5.0, 100.0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ._checks import check_int, check_number
from .signals import DIARY_GRAD_SUMS, climb, deep_net, layer_signals, layer_values, outcome, profiles, scan, table
from .text import span, subscript
from .train import FitResult


@dataclass
class Slopes:
    """The largest slope of each activation, where the sigmoid's peaks, its largest slope at ``|z|`` > 5
    and whether ReLU's and leaky ReLU's slopes take only their two values."""

    peak: pd.Series
    sigmoid_peak_z: float
    sigmoid_tail: float
    relu_zero_or_one: bool
    leaky_small_or_one: bool

    def report(self) -> str:
        return "\n".join([
            "largest slope: " + ", ".join(f"{name} {v:.4g}" for name, v in self.peak.items()),
            f"sigmoid slope at |z| > 5: at most {self.sigmoid_tail:.4f}",
            f"a chain of 10 sigmoid slopes is at most 0.25**10 = {0.25 ** 10:.1e}"])


def slopes(curves: pd.DataFrame, leak: float = 0.01) -> Slopes:
    """Summarize :func:`helpers.signals.activation_curves` of sigmoid, tanh, relu and leaky_relu."""
    slope = curves.pivot(index="z", columns="activation", values="derivative")
    missing = {"sigmoid", "tanh", "relu", "leaky_relu"} - set(slope.columns)
    if missing:
        raise ValueError(f"curves lack the activations {sorted(missing)}")
    slope = slope[list(dict.fromkeys(curves.activation))]
    zs, leaky = slope.index.to_numpy(), slope.leaky_relu
    return Slopes(slope.max(), float(zs[slope.sigmoid.argmax()]),
                  float(slope.sigmoid[np.abs(zs) > 5].max()), bool(np.isin(slope.relu, [0, 1]).all()),
                  bool((np.isclose(leaky, leak) | np.isclose(leaky, 1.0)).all()))


@dataclass
class FlowRatios:
    """``ratio``: ‖∇W₁‖ / ‖∇W_out‖ (activation × seed); the sigmoid net's share of the gradient kept
    per hidden layer (geometric mean, per seed), its ratio's decades, and tanh's ratio over ReLU's."""

    ratio: pd.DataFrame
    per_layer: pd.Series
    sig_decades: int
    relu_loses: pd.Series

    def report(self) -> str:
        return ("first-layer / output-layer gradient norm:\n"
                + self.ratio.map(lambda v: f"{v:.2g}").to_string()
                + "\nsigmoid net, share of the gradient kept per layer (geometric mean), seed"
                + ("s" if len(self.per_layer) > 1 else "") + f" {span(self.per_layer.index, 'd')}: "
                + ", ".join(f"{v:.3f}" for v in self.per_layer))


def flow_ratios(flow: pd.DataFrame, depth: int) -> FlowRatios:
    """The first-to-last ratios of :func:`helpers.signals.profiles` ``by="activation"`` of sigmoid,
    tanh and ReLU nets with ``depth`` hidden layers (the output layer is ``depth + 1``)."""
    check_int("depth", depth, minimum=2)
    grads = table(flow, "grad_norm", rows=["activation", "seed"])
    ratio = (grads[1] / grads[depth + 1]).unstack("seed")
    missing = {"sigmoid", "tanh", "relu"} - set(ratio.index)
    if missing:
        raise ValueError(f"flow lacks the activations {sorted(missing)}; profile sigmoid, tanh and relu nets")
    sig = grads.loc["sigmoid"]
    per_layer = (sig[1] / sig[depth]) ** (1 / (depth - 1))
    return FlowRatios(ratio, per_layer, round(float(np.log10(ratio.loc["sigmoid"]).mean())),
                      ratio.loc["tanh"] / ratio.loc["relu"])


def backward_factors(activations: Iterable[str], seeds: Iterable[int], x: torch.Tensor, y: torch.Tensor,
                     depth: int = 10) -> pd.DataFrame:
    """Per activation (mean over seeds): the factor per layer, hidden layer ``depth`` down to 1
    (geometric mean of ``depth − 1`` factors), of the backward signal, the input RMS and the weight
    gradient (:func:`helpers.signals.layer_signals` of ``deep_net(act, seed, depth=depth)``), and the
    predicted backward factor √(E[φ′²]/3), E[φ′²] averaged over hidden layers 1 to ``depth − 1``."""
    check_int("depth", depth, minimum=2)
    rows = []
    for act in activations:
        for seed in seeds:
            sizes = layer_signals(deep_net(act, seed, depth=depth), x, y).set_index("index")
            down = (sizes.loc[1] / sizes.loc[depth]) ** (1 / (depth - 1))
            rows.append({"activation": act, **down[["backward signal", "input RMS", "weight gradient"]],
                         "predicted √(E[φ′²]/3)": np.sqrt(sizes["E[φ′²]"].loc[: depth - 1].mean() / 3)})
    return pd.DataFrame(rows).groupby("activation", sort=False).mean()


def init_checks(flow: pd.DataFrame, depth: int, *, big: str, small: str, xavier: str) -> pd.DataFrame:
    """For :func:`helpers.signals.profiles` of the inits ``big``, ``small`` and ``xavier`` (column
    ``init``): one column (init, measurement) per check, one row per seed — first-to-last weight
    gradients, the backward signal's ratio ∂L/∂a₁ / ∂L/∂a_depth and growth per layer, the saturated
    share and the largest weight gradient."""
    check_int("depth", depth, minimum=2)
    w = {k: table(flow, "grad_norm", init=k) for k in (big, small, xavier)}  # seeds × layers
    a = {k: table(flow, "backward_signal", init=k) for k in (big, small, xavier)}
    first_to_deepest = "∂L/∂a₁ / ∂L/∂a" + subscript(depth)
    return pd.DataFrame({
        (big, "∇W₁ / ∇W_out"): w[big][1] / w[big][depth + 1],
        (big, "signal growth per layer"): (a[big][1] / a[big][depth]) ** (1 / (depth - 1)),
        (big, "share saturated"): table(flow, "frac_saturated", init=big).mean(axis=1),
        (small, first_to_deepest): a[small][1] / a[small][depth],
        (small, "largest ∇W"): w[small].max(axis=1),
        ("Xavier", "∇W₁ / ∇W_out"): w[xavier][1] / w[xavier][depth + 1],
        ("Xavier", first_to_deepest): a[xavier][1] / a[xavier][depth]})


def first_to_last_grid(flows, depths: Iterable[int], activations: Iterable[str],
                       scales: Iterable[float]) -> pd.Series:
    """``flows.first_to_last`` (a :class:`helpers.signals.GradientFlows`) for every depth, activation
    and init scale: a Series indexed by (depth, activation, init scale)."""
    keys = [(d, a, s) for d in depths for a in activations for s in scales]
    ratios = pd.Series({key: flows.first_to_last(*key) for key in keys})
    ratios.index.names = ["depth", "activation", "init scale"]
    return ratios


def sigmoid_sizing(x: torch.Tensor, y: torch.Tensor, multiples: Iterable[float], depth: int = 10,
                   seed: int = 0) -> pd.DataFrame:
    """A ``depth``-layer sigmoid net with Xavier-normal weights times each multiple: its first/last
    weight-gradient ratio and its share of saturated units (mean over layers), indexed by multiple."""
    settings = {float(m): dict(scheme="xavier_normal", activation="sigmoid", scale=float(m)) for m in multiples}
    flow = profiles(settings, (check_int("seed", seed, minimum=0),), x, y, by="Xavier ×", act="sigmoid",
                    depth=check_int("depth", depth, minimum=1))
    g = table(flow, "grad_norm", rows="Xavier ×")
    saturated = table(flow, "frac_saturated", rows="Xavier ×").mean(axis=1)
    return pd.DataFrame({"first/last ratio": g[1] / g[depth + 1], "share saturated": saturated})


@dataclass
class LayerRuns:
    """Per seed: the median update ratio of the first and last hidden layers, every hidden layer's
    mean output after the last step, and the test accuracy."""

    update: pd.DataFrame
    output: pd.DataFrame
    accuracy: pd.Series

    def table(self) -> pd.DataFrame:
        return pd.concat([self.update.add_prefix("update ratio, layer "),
                          self.output.add_prefix("mean output, layer "), self.accuracy], axis=1).T


def run_layers(runs: Mapping[int, FitResult], depth: int) -> LayerRuns:
    """:class:`LayerRuns` of monitored runs (seed → run) of a net with ``depth`` hidden layers."""
    check_int("depth", depth, minimum=1)
    upd = pd.DataFrame({s: layer_values(r, "update_ratio") for s, r in runs.items()}).T[[1, depth]]
    out = pd.DataFrame({s: layer_values(r, "act_mean", "last") for s, r in runs.items()}).T
    return LayerRuns(upd, out, pd.Series({s: r.final() for s, r in runs.items()}, name="test accuracy"))


@dataclass
class Divergence:
    """Runs on a fixed batch (seed → run): the step whose loss turned nan (NaN: never), the diverging
    seeds by that step, the one shown (their median), its logged gradient sums and every diverging
    run's :func:`helpers.signals.climb`, against the debugging diary's largest jump."""

    nan_step: pd.Series
    diverging: pd.Series
    shown_seed: int
    shown: FitResult
    log: pd.DataFrame
    climbs: pd.DataFrame
    diary_jump: float

    @property
    def end(self) -> int:
        """The shown run's step whose loss was nan (or its last step)."""
        return self.shown.diverged_step or self.shown.steps_run

    def before_nan(self) -> pd.Series:
        """The shown run's gradient sums indexed by updates before the nan."""
        return self.log.set_index(self.log.step - self.end).value

    def report(self) -> str:
        shown = climb(self.shown)
        return "\n".join([
            "nan at step, per seed: " + ", ".join(
                f"{s}: {'never' if pd.isna(v) else f'{v:.0f}'}" for s, v in self.nan_step.items()),
            f"seed {self.shown_seed}, gradient sum after its last updates: "
            + ", ".join(f"{v:.3g}" for v in self.log.value.tail(8))
            + f" -> loss nan, fit says {self.shown.status}",
            "growth of the gradient sum before the nan: median of the diverging seeds (the run shown)",
            f"  from its lowest value: {self.climbs.growth.median():.1e}-fold ({shown['growth']:.1e})",
            f"  largest one-step jump: {self.climbs.jump.median():.1e}-fold ({shown['jump']:.1e})",
            f"  the debugging diary's largest jump: {self.diary_jump:.0f}-fold"])


def divergence(runs: Mapping[int, FitResult]) -> Divergence:
    """:class:`Divergence` of runs logged with ``grad_abs_sum``; the run shown is picked by its
    outcome: of the seeds that diverged, the one with the median nan step (the first seed if none)."""
    if not runs:
        raise ValueError("runs is empty: give at least one seed's run")
    nan_step = pd.Series({s: r.diverged_step for s, r in runs.items()}, dtype=float)
    diverging = nan_step.dropna().sort_values()
    shown_seed = int(diverging.index[len(diverging) // 2]) if len(diverging) else next(iter(runs))
    climbs = pd.DataFrame([climb(runs[s]) for s in diverging.index], index=diverging.index,
                          columns=["growth", "jump"])
    shown = runs[shown_seed]
    return Divergence(nan_step, diverging, shown_seed, shown, shown.curve("grad_abs_sum"), climbs,
                      float((DIARY_GRAD_SUMS / DIARY_GRAD_SUMS.shift()).max()))


def rescue_table(runs: Mapping[str, Mapping[int, FitResult]], seeds: Iterable[int]) -> pd.DataFrame:
    """One row per seed and clip setting (``runs``: clip label → seed → run): the seed, ``clip norm``
    and :func:`helpers.signals.outcome`."""
    return pd.DataFrame([{"seed": seed, "clip norm": clip, **outcome(by_seed[seed])}
                         for seed in seeds for clip, by_seed in runs.items()])


def nan_steps(fixes: Mapping[str, Mapping[int, FitResult]]) -> pd.DataFrame:
    """Seed × remedy: the step whose loss turned nan, NaN where it never did."""
    return pd.DataFrame({name: {seed: r.diverged_step for seed, r in runs.items()}
                         for name, runs in fixes.items()}, dtype=float)


@dataclass
class RemedyDetails:
    """Per seed and remedy the test accuracy (NaN: diverged); the ReLU net's loss before the first step
    and nan step per seed; the residual net's medians and mean final training loss."""

    accuracy: pd.DataFrame
    relu_start: pd.Series
    relu_nan_step: pd.Series
    residual: pd.Series
    residual_loss_mean: float

    def report(self) -> str:
        return "\n".join([
            "test accuracy per seed (–: diverged):",
            self.accuracy.T.map(lambda v: "–" if pd.isna(v) else f"{v:.3f}").to_string(),
            f"ReLU net, training loss before the first step: {span(self.relu_start, '.2g')}",
            f"residual net on the training set, mean loss of the seeds {self.residual_loss_mean:.2f}; medians:",
            self.residual.filter(like="prediction").to_string(float_format=lambda v: f"{v:.3g}")])


def remedy_details(runs: pd.DataFrame, order: Sequence[str], *, relu: str, residual: str) -> RemedyDetails:
    """:class:`RemedyDetails` of :func:`helpers.signals.remedy_run` rows (with ``remedy`` and ``seed``),
    the remedies in ``order``; ``relu`` and ``residual`` name two of them."""
    acc = runs.pivot(index="seed", columns="remedy", values="test accuracy")[list(order)]
    of = runs.set_index("remedy")
    return RemedyDetails(acc, of.loc[relu, "initial train loss"], of.loc[relu, "nan at step"],
                         of.loc[residual].median(numeric_only=True),
                         float(of.loc[residual, "final train loss"].mean()))


@dataclass
class CliffEdge:
    """Where ``|dL/db|`` peaks on a scan, the loss just left and right of it, the largest gradient and
    its ratio to the median away (more than 0.1) from the cliff."""

    b: float
    left_loss: float
    right_loss: float
    largest: float
    spike: float

    def report(self) -> str:
        return (f"cliff at b ≈ {self.b:.3f}; loss just left {self.left_loss:.2f}, right {self.right_loss:.2f}\n"
                f"largest |dL/db| on the grid: {self.largest:.0f}, {self.spike:.0f} times the median "
                f"away from the cliff")


def cliff_edge(cliff: pd.DataFrame) -> CliffEdge:
    """:class:`CliffEdge` of a :func:`helpers.signals.scan` (columns b, loss, ``|dL/db|``)."""
    grad = cliff["|dL/db|"]
    b = float(cliff.b[grad.idxmax()])
    away = grad[(cliff.b - b).abs() > 0.1]
    left, right = cliff[cliff.b < b - 0.01].loss, cliff[cliff.b > b + 0.01].loss
    return CliffEdge(b, float(left.iloc[-1]), float(right.iloc[0]), float(grad.max()),
                     float(grad.max() / away.median()))


def wall_point(loss_fn: Callable[..., torch.Tensor], w: torch.Tensor, b_cliff: float, *,
               above: float = 1000.0, half_width: float = 0.002, points: int = 4001) -> float:
    """Scanning ``b`` from ``b_cliff − half_width`` towards the cliff on a fine grid: the first ``b``
    where ``|∂L/∂b|`` exceeds ``above``."""
    check_number("above", above, minimum=0.0, strict=True)
    b_cliff = check_number("b_cliff", b_cliff)
    grid = torch.linspace(b_cliff - half_width, b_cliff + half_width, check_int("points", points, minimum=2),
                          dtype=torch.float64)
    fine = scan(loss_fn, w, grid)
    steep = fine.b[fine["|dL/db|"] > above]
    if steep.empty:
        raise ValueError(f"no point of the grid has |dL/db| > {above:g}; lower `above` or widen the grid")
    return float(steep.iloc[0])
