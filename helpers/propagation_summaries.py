"""The initialization chapter's experiments, each in one call, and the numbers it reports from them.

Built on :mod:`helpers.propagation` (which measures one net) and :mod:`helpers.init`; the sentences
are in :mod:`helpers.propagation_text`:

- :func:`symmetry_runs` — constant, zero and random starts, trained, and their hidden rows;
- :func:`collapse`, :func:`theory_fit` — the post's histograms and the variance theory, summarized;
- :func:`slope_gain_table`, :func:`xavier_k_profiles`, :func:`xavier_k_training` — the post's
  Xavier table, tested;
- :func:`train_schemes`, :func:`fan_modes`, :func:`singular_values`, :func:`singular_value_summary`,
  :func:`transfer_gain`, :func:`leaky_gain_factors` — the later sections and exercises.

>>> slope_gain_table({"tanh": 4.0})["slope at 0"].tolist()
[1.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from . import init, models, propagation, train
from ._checks import check_int
from .data import Dataset


def symmetry_runs(data: Dataset, inits: Mapping[str, Mapping], *, depth: int = 2, width: int = 32,
                  steps: int = 200, lr: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Train a tanh ``mlp`` (``depth`` hidden layers of ``width``) from each ``label → init_ args``
    (SGD, batches of 64): one column per init with the test accuracy, the number of distinct
    predictions on the test set and :func:`helpers.propagation.row_symmetry` of the trained net."""
    check_int("steps", steps, minimum=1)
    columns = {}
    for label, kwargs in inits.items():
        net = models.mlp(data.n_features, data.n_classes, depth=depth, width=width, activation="tanh")
        init.init_(net, seed=seed, **kwargs)
        result = train.fit(net, data, steps=steps, batch_size=64, lr=lr, seed=seed, eval_every=steps)
        with torch.no_grad():
            predictions = net(data.x_test).argmax(1)
        columns[label] = {"test accuracy": result.final(), "distinct predictions": len(torch.unique(predictions)),
                          **propagation.row_symmetry(net)}
    return pd.DataFrame(columns)


@dataclass
class Collapse:
    """One case of the post's experiment: the std per layer, its factor per layer, the share of the
    outputs in the histogram bin around 0 per layer, and that bin's half width."""

    std: pd.Series
    shrink: pd.Series
    centre: pd.Series
    half_width: float

    def report(self) -> str:
        return (f"std per layer: {self.std.iloc[0]:.3g} → {self.std.iloc[-1]:.3g}\n"
                f"factor per layer: {self.shrink.min():.3f}–{self.shrink.max():.3f}\n"
                f"share of the outputs in the bin around 0 (|x| < {self.half_width:.3f}):\n"
                "  layers 1, 2, 3: " + ", ".join(f"{v:.0%}" for v in self.centre.loc[:3]) + "\n"
                f"  layers 4–10: at least {self.centre.loc[4:].min():.4%}")


def collapse(std: pd.DataFrame, hists: pd.DataFrame, case: str) -> Collapse:
    """:class:`Collapse` of ``case`` from the per-layer std (layer × case) and the histograms of
    :func:`helpers.propagation.layer_summary` (a ``case`` column)."""
    s = std[case]
    h = hists[hists.case == case]
    if h.empty:
        raise ValueError(f"hists has no rows of case {case!r}")
    centre = h[(h.bin_left < 0) & (h.bin_right > 0)].set_index("index").density
    return Collapse(s, (s / s.shift(1)).dropna(), centre, float(h.bin_right.iloc[0] - h.bin_left.iloc[0]) / 2)


@dataclass
class TheoryFit:
    """How the measured variances of :func:`helpers.propagation.measured_vs_predicted` fit the
    prediction: decades the predictions span, the mean ratio over seeds (case, layer), each case's
    smallest and largest single-seed ratio, and the largest relative difference between the ReLU
    cases' ratios, draw for draw."""

    decades: float
    mean_ratio: pd.Series
    seed_spread: pd.DataFrame
    relu_rel_diff: float

    def report(self) -> str:
        return (f"the predictions span {self.decades:.0f} decades\n"
                f"mean over seeds / predicted: {self.mean_ratio.min():.3f}–{self.mean_ratio.max():.3f}\n"
                f"the three ReLU cases' single-seed ratios differ by at most {self.relu_rel_diff:.0e} (relative)")


def theory_fit(compare: pd.DataFrame, relu_cases: Sequence[str]) -> TheoryFit:
    """:class:`TheoryFit` of a measured-vs-predicted frame with a ``case`` column."""
    relu_ratios = compare[compare.case.isin(relu_cases)].pivot_table(
        index=["seed", "layer"], columns="case", values="ratio")
    return TheoryFit(math.log10(compare.predicted.max() / compare.predicted.min()),
                     compare.groupby(["case", "layer"]).ratio.mean(),
                     compare.groupby("case").ratio.agg(["min", "max"]),
                     float((relu_ratios.max(axis=1) / relu_ratios.min(axis=1) - 1).max()))


def slope_gain_table(post_factors: Mapping[str, float]) -> pd.DataFrame:
    """Per activation of ``post_factors`` (activation → the post's factor): its slope at 0 by
    autograd (ReLU's just right of 0), 1 / slope, the post's factor and ``nn.init.calculate_gain``."""
    slopes = {}
    for name in post_factors:
        z = torch.zeros(1, requires_grad=True)
        models.activation(name)(z + 1e-6 if name == "relu" else z).backward()
        slopes[name] = float(z.grad)
    return pd.DataFrame({"slope at 0": slopes, "1 / slope": {k: 1 / v for k, v in slopes.items()},
                         "the post's factor": dict(post_factors),
                         "torch calculate_gain": {k: nn.init.calculate_gain(k) for k in slopes}})


def xavier_k_profiles(x: torch.Tensor, y: torch.Tensor, widths: Sequence[int], activations: Iterable[str],
                      ks: Iterable[float], seed: int = 0) -> pd.DataFrame:
    """Bias-free MLPs of ``widths`` (input first, 10 outputs) with uniform weights on ``[−k r, k r]``,
    r = √(6/(n_in+n_out)) (``xavier_uniform`` with gain 1, times k): one forward and backward pass
    (:func:`helpers.propagation.gradient_profile`) each, indexed by (activation, k)."""
    rows, last = {}, len(widths) - 1  # the last hidden layer
    for activation in activations:
        for k in ks:
            net = models.mlp(widths[0], 10, depth=len(widths) - 1, width=list(widths[1:]), activation=activation,
                             bias=False)
            init.init_(net, "xavier_uniform", activation="identity", scale=k, seed=seed)
            sat, grad = propagation.gradient_profile(net, x, y)
            rows[(activation, k)] = {"saturated share (mean over layers)": sat, "grad norm, layer 1": grad[0],
                                     f"grad norm, layer {last}": grad[last - 1],
                                     f"layer 1 / layer {last}": grad[0] / grad[last - 1]}
    return pd.DataFrame(rows).T.rename_axis(["activation", "k"])


def xavier_k_training(data: Dataset, settings: Iterable[tuple[str, int, float]], seeds: Iterable[int], *,
                      steps: int = 150, batch_size: int = 64) -> pd.DataFrame:
    """For each (activation, depth, learning rate) of ``settings``, MLPs of width 64 with uniform
    Xavier weights of gain 1 times k, for k = 1, PyTorch's gain for the activation and 4, trained on
    every seed (:func:`helpers.propagation.train_seeds`): its rows with columns activation and k."""
    seeds = list(seeds)
    frames = []
    for activation, depth, lr in settings:
        for k in sorted({1.0, nn.init.calculate_gain(activation), 4.0}):  # Xavier (gain 1) × k
            runs, _ = propagation.train_seeds(data, seeds, model=dict(depth=depth, width=64, activation=activation),
                                  init_kwargs=dict(scheme="xavier_uniform", activation="identity", scale=k),
                                  steps=steps, batch_size=batch_size, lr=lr)
            frames.append(runs.assign(activation=activation, k=round(k, 3)))
    return pd.concat(frames, ignore_index=True)


def train_schemes(data: Dataset, schemes: Mapping[str, Mapping], seeds: Mapping[str, Iterable[int]], *,
                  model: Mapping, **fit_kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`helpers.propagation.train_seeds` for each ``label → init_ args`` on ``seeds[label]``:
    the rows and the histories of all of them, each with an ``init`` column."""
    missing = set(schemes) - set(seeds)
    if missing:
        raise ValueError(f"seeds has no entry for {sorted(missing)}")
    runs = {label: propagation.train_seeds(data, seeds[label], model=model, init_kwargs=kwargs, **fit_kwargs)
            for label, kwargs in schemes.items()}
    return tuple(pd.concat([frames[i].assign(init=label) for label, frames in runs.items()], ignore_index=True)
                 for i in (0, 1))


def fan_modes(x: torch.Tensor, widths: Sequence[int]) -> pd.DataFrame:
    """For Kaiming's fan-in and fan-out modes on a bias-free ReLU net of ``widths``
    (:func:`helpers.propagation.relu_moments`): the forward E[x²] at the last layer over the input's
    and the gradient variance at the input over the last layer's."""
    fan, last = {}, len(widths) - 1
    for mode in ("fan_in", "fan_out"):
        forward, backward = propagation.relu_moments(x, widths, mode)
        fan[mode] = {f"forward: E[x²] at layer {last} / input": forward[-1] / forward[0],
                     f"backward: Var[grad] at input / layer {last}": backward[0] / backward[-1]}
    return pd.DataFrame(fan).T.rename_axis("mode")


def singular_values(seeds: Iterable[int], depth: int = 32, width: int = 64) -> pd.DataFrame:
    """log₁₀ of the input–output Jacobian's singular values (:func:`helpers.propagation.jacobian_singular_values`)
    of linear and tanh nets with Gaussian (variance 1/n) or orthogonal weights, one row per value."""
    seeds = list(seeds)
    return pd.DataFrame([
        {"net": "linear" if act == "identity" else "tanh", "weights": label, "seed": seed,
         "log10 singular value": math.log10(v)}
        for act in ("identity", "tanh")
        for label, scheme in [("Gaussian, var 1/n", "xavier_normal"), ("orthogonal", "orthogonal")]
        for seed in seeds
        for v in propagation.jacobian_singular_values(act, scheme, seed, depth=depth, width=width)])


def singular_value_summary(sv: pd.DataFrame) -> pd.DataFrame:
    """Per net and weights of :func:`singular_values`: the min, median and max of log₁₀ σ and its std
    (``spread_decades``)."""
    return sv.groupby(["net", "weights"])["log10 singular value"].agg(
        min="min", median="median", max="max", spread_decades="std")


def transfer_gain(runs: pd.DataFrame, *, n: str, start: str, accuracy: str, pretrained: str,
                  random: str) -> pd.DataFrame:
    """(n, seed) × start: the test accuracy of each start and the ``gain`` of ``pretrained`` over
    ``random``, from the rows of :func:`helpers.propagation.fine_tune_vs_scratch` (columns renamed)."""
    gap = runs.pivot_table(index=[n, "seed"], columns=start, values=accuracy)
    gap["gain"] = gap[pretrained] - gap[random]
    return gap


def leaky_gain_factors(x: torch.Tensor, a: float, seeds: Iterable[int], *, depth: int = 30,
                       width: int = 256) -> pd.DataFrame:
    """A bias-free leaky-ReLU net (slope ``a``) with Kaiming weights of ReLU's gain √2 and of the leaky
    gain √(2/(1+a²)): the variance factor per layer from layer 2 to ``depth`` (layer 1, fed ``x``,
    left out), measured on each seed (mean, min, max) and predicted by ``init.predicted_variance``."""
    check_int("depth", depth, minimum=3)
    seeds, leaky, n = list(seeds), {}, depth - 2
    for label, gain_of in [("ReLU gain √2", "relu"), ("leaky gain √(2/(1+a²))", "leaky_relu")]:
        scale = init.gain(gain_of, negative_slope=a) / init.gain("leaky_relu", negative_slope=a)
        q = init.predicted_variance("kaiming_normal", [width] * (depth + 1), activation="leaky_relu",
                                    negative_slope=a, scale=scale).pre_activation_var
        var = propagation.variances_by_seed(x, seeds, model=dict(depth=depth, width=width, activation="leaky_relu",
                                                     negative_slope=a, bias=False),
                                init_kwargs=dict(scheme="kaiming_normal", activation=gain_of, negative_slope=a))
        measured = (var[depth] / var[2]) ** (1 / n)
        leaky[label] = {"measured: mean": measured.mean(), "measured: min": measured.min(),
                        "measured: max": measured.max(), "predicted": float(q.iloc[-1] / q.iloc[1]) ** (1 / n)}
    summary = pd.DataFrame(leaky).T
    summary.attrs["depth"] = depth  # leaky_gain_answer counts the factors from it
    return summary


def spread_report(between: pd.DataFrame, eps: float, scheme_gap: float, draw_gap: float) -> str:
    """The printout of the PyTorch-default section: the last layer's spread between examples per seed
    and init (:func:`helpers.propagation.init_spread`) against ``eps``, and the two log gaps of
    :func:`helpers.propagation.log_gaps` as factors."""
    return ("last layer: spread between examples / mean level\n"
            + between.map(lambda v: f"{v:.2g}").to_string()
            + f"\nrounding error of 32-bit floats (machine epsilon): {eps:.2g}\n"
            f"Kaiming uniform vs normal, std per layer (geometric mean of {len(between)} seeds each):\n"
            f"  largest gap between the two mean curves: a factor {math.exp(scheme_gap):.2f}\n"
            f"  largest gap between two single draws of normal weights: a factor "
            f"{math.exp(draw_gap):.2f}")


@dataclass
class LsuvBatches:
    """The variances of :func:`helpers.propagation.lsuv_variances` rows on the LSUV batch (rows) and
    on other digits (layer × activation)."""

    own: pd.DataFrame
    other: pd.DataFrame

    def report(self) -> str:
        return (f"on its own batch every layer's variance is within {self.own.variance.min():.3f}–"
                f"{self.own.variance.max():.3f}\non other digits:\n"
                + self.other.iloc[[0, -1]].T.rename(columns=lambda i: f"layer {i}")
                .rename_axis(index=None, columns=None).round(2).to_string())


def lsuv_batches(lsuv: pd.DataFrame, own: str = "LSUV batch", other: str = "other digits") -> LsuvBatches:
    """Split LSUV's variances by batch: :class:`LsuvBatches`."""
    return LsuvBatches(lsuv[lsuv.batch == own],
                       lsuv[lsuv.batch == other].pivot(index="layer", columns="activation", values="variance"))


def lsuv_report(lsuv_runs: pd.DataFrame, he_runs: pd.DataFrame) -> str:
    """Exercise 3's printout: LSUV's runs per seed, and the medians over seeds of LSUV's (200 steps)
    and of each init of He et al.'s runs (300 steps; :func:`train_schemes` rows)."""
    cols = ["final train loss", "test accuracy"]
    medians = [lsuv_runs[cols].median().rename("LSUV, 200 steps")]
    medians += [g[cols].median().rename(f"{k}, 300 steps") for k, g in he_runs.groupby("init")]
    n = he_runs.dropna(subset=["test accuracy"]).groupby("init").size()
    return ("LSUV, per seed (final train loss: mean of the last 20 steps):\n"
            + lsuv_runs.round(3).to_string()
            + f"\n\nmedian over seeds (LSUV {len(lsuv_runs)}, Kaiming {n['Kaiming']}, "
            f"Xavier {n['Xavier (gain 1)']}):\n" + pd.DataFrame(medians).round(3).to_string())
