r"""Measuring a signal through depth: the experiments of the initialization chapter.

A layer :math:`y = Wx` multiplies the variance by :math:`n_\text{in}\operatorname{Var}[w]`
(times :math:`\tfrac12` after a ReLU). These functions measure what nets actually do:

- outputs per layer — :func:`layer_outputs` (via :func:`helpers.hooks.capture`),
  :func:`hidden_variances`, :func:`layer_summary`, :func:`example_spread`, :func:`init_spread`,
  :func:`log_gaps`, :func:`gradient_profile`, :func:`row_symmetry`;
- theory — :func:`measured_vs_predicted` (against :func:`helpers.init.predicted_variance`),
  :func:`theory_table`, :func:`relu_moments` (fan-in/fan-out), :func:`jacobian_singular_values`,
  :func:`second_moment` (Gauss–Hermite quadrature), :func:`lsuv_variances`;
- runs over seeds — :func:`train_seeds`, :func:`final_numbers`, :func:`variances_by_seed`;
  transfer — :func:`class_subset`, :func:`fresh_head`, :func:`fine_tune_vs_scratch`;
- the explorer — :data:`EXPLORER_SCHEMES`, :func:`explorer_outputs`, :func:`scale_ratios`.

The figures are in :mod:`helpers.propagation_plots`.

>>> from helpers.models import mlp
>>> [tuple(o.shape) for o in layer_outputs(mlp(8, 2, depth=2, width=4), torch.zeros(3, 8))]
[(3, 4), (3, 4)]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import init, models, monitor, stats, train
from ._checks import check_choice, check_int, check_number
from .data import Dataset
from .hooks import capture
from .layers import activation_layers, check_module, weight_layers


def layer_outputs(net: nn.Module, x: torch.Tensor, where: str = "act") -> list[torch.Tensor]:
    """Outputs of every activation module (``where="act"``) or every linear/conv layer
    (``"linear"``, the output layer included) for the batch ``x``, in order, without gradients."""
    check_choice("where", where, ("act", "linear"))
    named = activation_layers(net) if where == "act" else weight_layers(net)
    with capture(dict(named)) as seen, torch.no_grad():
        net(x)
    return list(seen.values())


def hidden_variances(net: nn.Module, x: torch.Tensor) -> list[float]:
    """Variance of each hidden linear layer's output (the pre-activations), output layer left out.

    >>> from helpers.models import mlp
    >>> len(hidden_variances(mlp(8, 2, depth=3), torch.randn(16, 8)))
    3
    """
    return [float(o.var()) for o in layer_outputs(net, x, where="linear")[:-1]]


def layer_summary(outputs: Sequence[torch.Tensor], activation: str, *, case: str = "", bins: int = 41,
                  hist_range: tuple[float, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-layer statistics and histograms of ``outputs`` (layer 1 first).

    Statistics: std, var, ``frac_saturated`` (:func:`helpers.stats.saturated`; NaN for an
    activation without flat tails) and ``frac_zero``. Histograms over ``hist_range`` (tanh
    [-1, 1], else [0, 4]; values outside count in the edge bins), of the positive outputs
    only for ReLU; an odd ``bins`` puts 0 mid-bin. The histogram frame has the columns
    :func:`helpers.plots.histogram_grid` reads.
    """
    check_int("bins", bins, minimum=1)
    low, high = hist_range or ((-1.0, 1.0) if activation == "tanh" else (0.0, 4.0))
    edges = np.linspace(low, high, bins + 1)
    rows, hists = [], []
    for i, out in enumerate(outputs, start=1):
        mask = stats.saturated(activation, out)
        rows.append({"case": case, "layer": i, "std": float(out.std()), "var": float(out.var()),
                     "frac_saturated": float("nan") if mask is None else float(mask.float().mean()),
                     "frac_zero": float((out == 0).float().mean())})
        values = out[out > 0] if activation == "relu" else out.flatten()
        counts = torch.histc(values.clamp(low, high), bins=bins, min=low, max=high).numpy()
        hists.append(pd.DataFrame({"case": case, "step": 0, "layer": f"layer {i}", "index": i,
                                   "bin_left": edges[:-1], "bin_right": edges[1:],
                                   "density": counts / max(counts.sum(), 1)}))
    return pd.DataFrame(rows), pd.concat(hists, ignore_index=True)


def measured_vs_predicted(outputs: Sequence[Sequence[torch.Tensor]], predicted: pd.DataFrame) -> pd.DataFrame:
    """Variance of each layer's outputs against ``predicted.activation_var``, for each draw
    ``outputs[seed]`` (a list of per-layer outputs): one row per (seed, layer) with
    ``predicted``, ``measured`` and their ``ratio``."""
    frames = [pd.DataFrame({"seed": seed, "layer": predicted.layer.to_numpy(),
                            "predicted": predicted.activation_var.to_numpy(),
                            "measured": [float(o.var()) for o in outs]}) for seed, outs in enumerate(outputs)]
    out = pd.concat(frames, ignore_index=True)
    return out.assign(ratio=out.measured / out.predicted)


def theory_table(compare: pd.DataFrame, cases: Sequence[str], layers: Sequence[int]) -> pd.DataFrame:
    """Mean predicted and measured variance at some ``layers`` (a column pair each) and the range of
    the single draws' measured / predicted, one row per case of :func:`measured_vs_predicted`."""
    mean = compare.groupby(["case", "layer"])[["predicted", "measured"]].mean().unstack("layer")
    table = mean[[(kind, n) for n in layers for kind in ("predicted", "measured")]].loc[list(cases)]
    table.columns = pd.MultiIndex.from_tuples([(f"layer {n}", kind) for kind, n in table.columns])
    ratio = compare.groupby("case").ratio
    table[("single seeds", "÷ predicted")] = [f"{ratio.min()[c]:.2f}–{ratio.max()[c]:.2f}" for c in table.index]
    return table.rename_axis(None)


def gradient_profile(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, np.ndarray]:
    """One forward and backward pass (:func:`helpers.monitor.snapshot`, the net unchanged):
    the saturated share averaged over the activation layers, and the gradient norm of each
    weight layer, first to last."""
    frame, _ = monitor.snapshot(net, x, y)
    grad = frame[frame.quantity == "grad_norm"].sort_values("index").value.to_numpy()
    return float(frame[frame.quantity == "frac_saturated"].value.mean()), grad


def row_symmetry(net: models.MLP) -> dict[str, float]:
    """Per hidden block ``hidden<i>``: the largest ``|row − row 1|`` of its weight, its number of
    distinct rows (1: every unit computes the same function) and the std of the weight."""
    out = {}
    for i, block in enumerate(net.hidden_blocks(), start=1):
        w = block.linear.weight.detach()
        out[f"hidden{i}: max |row − row 1|"] = float((w - w[0]).abs().max())
        out[f"hidden{i}: distinct rows"] = len(torch.unique(w, dim=0))
        out[f"hidden{i}: weight std"] = float(w.std())
    return out


def final_numbers(result: train.FitResult, last: int = 20) -> dict:
    """Status, final training loss (mean of the ``last`` steps) and test accuracy of a run; a
    diverged run counts as an infinite loss and zero accuracy, the worst outcome for medians."""
    if result.status == "diverged":
        return {"status": "diverged", "final train loss": math.inf, "test accuracy": 0.0}
    return {"status": "ok", "final train loss": result.curve("loss").value.iloc[-last:].mean(),
            "test accuracy": result.final()}


def train_seeds(data: Dataset, seeds: Iterable[int], *, model: Mapping, init_kwargs: Mapping,
                **fit_kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train ``models.mlp(n_features, n_classes, **model)`` initialized with
    ``init.init_(net, **init_kwargs, seed=seed)`` once per seed (``train.fit(..., seed=seed)``,
    evaluated at the end only unless ``eval_every`` is given).

    Returns one row per seed (:func:`final_numbers`) and the runs' histories with a ``seed`` column.
    """
    fit_kwargs.setdefault("eval_every", fit_kwargs.get("steps", 500))
    runs, histories = [], []
    for seed in seeds:
        net = models.mlp(data.n_features, data.n_classes, **model)
        result = train.fit(init.init_(net, **init_kwargs, seed=seed), data, seed=seed, **fit_kwargs)
        runs.append({"seed": seed, **final_numbers(result)})
        histories.append(result.history.assign(seed=seed))
    return pd.DataFrame(runs), pd.concat(histories, ignore_index=True)


def variances_by_seed(x: torch.Tensor, seeds: Iterable[int], *, model: Mapping,
                      init_kwargs: Mapping) -> pd.DataFrame:
    """:func:`hidden_variances` of ``mlp(n_features, 10, **model)`` initialized with
    ``init.init_(net, **init_kwargs, seed=seed)`` and fed ``x``: one row per seed, one column per
    hidden layer (numbered from 1)."""
    rows = {seed: hidden_variances(init.init_(models.mlp(x.shape[1], 10, **model), **init_kwargs, seed=seed), x)
            for seed in seeds}
    return pd.DataFrame(rows, index=range(1, len(next(iter(rows.values()))) + 1)).T.rename_axis("seed")


def example_spread(out: torch.Tensor) -> float:
    """Spread between examples relative to the level: the std over the batch of each unit,
    averaged, over the mean ``|mean|`` of the units. 0: every example gives the same vector.

    >>> example_spread(torch.ones(5, 3))
    0.0
    """
    return float(out.std(0).mean() / out.mean(0).abs().mean())


def init_spread(schemes: Mapping[str, str], x: torch.Tensor, seeds: Iterable[int],
                **mlp_kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For each ``label → scheme`` and seed, a fresh ``mlp(n_features, 10, **mlp_kwargs)`` fed
    ``x``: the std of every activation layer's output (tidy: init, seed, index, quantity
    ``"act_std"``, value) and the :func:`example_spread` of the last one (seed × init)."""
    rows, between = [], {}
    for label, scheme in schemes.items():
        for seed in seeds:
            net = init.init_(models.mlp(x.shape[1], 10, **mlp_kwargs), scheme, seed=seed)
            outs = layer_outputs(net, x)
            rows += [{"init": label, "seed": seed, "index": i, "quantity": "act_std", "value": float(o.std())}
                     for i, o in enumerate(outs, start=1)]
            between.setdefault(label, []).append(example_spread(outs[-1]))
    return pd.DataFrame(rows), pd.DataFrame(between).rename_axis("seed")


def log_gaps(spread: pd.DataFrame, a: str, b: str) -> tuple[float, float]:
    """On a log scale, the largest gap between the mean curves of inits ``a`` and ``b`` (over
    seeds, per layer) and the largest gap between two single draws (seeds) of ``b``."""
    log_std = np.log(spread.pivot_table(index=["init", "seed"], columns="index", values="value"))
    mean_log = log_std.groupby(level="init").mean()
    draws = log_std.loc[b]
    return float((mean_log.loc[a] - mean_log.loc[b]).abs().max()), float((draws.max() - draws.min()).max())


def relu_moments(x: torch.Tensor, widths: Sequence[int], mode: str, seed: int = 1) -> tuple[list, list]:
    r"""Forward :math:`\mathbb{E}[h^2]` and backward :math:`\operatorname{Var}[\partial L/\partial h]`
    at the input and every layer of a bias-free ReLU net ``h = relu(h @ W)`` with Kaiming weights,
    :math:`\operatorname{Var}[w] = 2/n_\text{mode}`; the loss is a random read-out of the last layer."""
    check_choice("mode", mode, ("fan_in", "fan_out"))
    generator = torch.Generator().manual_seed(seed)
    layers = [x.clone().requires_grad_(True)]
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        w = torch.randn(n_in, n_out, generator=generator) * math.sqrt(2 / (n_in if mode == "fan_in" else n_out))
        layers.append(torch.relu(layers[-1] @ w))
        layers[-1].retain_grad()
    (layers[-1] * torch.randn(layers[-1].shape, generator=generator)).sum().backward()
    return [float(h.detach().pow(2).mean()) for h in layers], [float(h.grad.var()) for h in layers]


def jacobian_singular_values(activation: str, scheme: str, seed: int, depth: int = 32,
                             width: int = 64) -> np.ndarray:
    """Singular values of the input–output Jacobian of a square, bias-free MLP (gain 1 weights)
    at a random input (Saxe et al. 2014; Pennington et al. 2017)."""
    net = models.mlp(width, width, depth=depth, width=width, activation=activation, bias=False, flatten=False)
    init.init_(net, scheme, activation="identity", seed=seed)
    x = torch.randn(width, generator=torch.Generator().manual_seed(100 + seed))
    jac = torch.autograd.functional.jacobian(lambda v: net(v[None])[0], x)
    return torch.linalg.svdvals(jac).numpy()


def lsuv_variances(activation: str, batch: torch.Tensor, others: Mapping[str, torch.Tensor], *,
                   depth: int = 30, width: int = 64, seed: int = 0) -> pd.DataFrame:
    """Variance of each hidden linear layer's output of an LSUV-initialized MLP
    (:func:`helpers.init.lsuv_` on ``batch``, orthogonal start with the activation's gain, ReLU's
    for one without), on every batch of ``others``: columns activation, batch, layer, variance."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = models.mlp(batch.shape[1], 10, depth=depth, width=width, activation=activation)
        init.lsuv_(net, batch, activation=activation if activation in ("relu", "tanh") else "relu")
    return pd.DataFrame([{"activation": activation, "batch": name, "layer": i, "variance": v}
                         for name, x in others.items() for i, v in enumerate(hidden_variances(net, x), start=1)])


def class_subset(ds: Dataset, classes: Sequence[int], n_train: int | None = None, seed: int = 0) -> Dataset:
    """The examples of ``classes`` (relabelled 0..k-1), optionally only ``n_train`` training examples.

    >>> from helpers.data import make_blobs
    >>> sub = class_subset(make_blobs(200, n_classes=4), [1, 3], n_train=10)
    >>> sub.n_classes, len(sub.y_train), sorted(sub.y_test.unique().tolist())
    (2, 10, [0, 1])
    """
    keep = torch.tensor(list(classes))
    relabel = torch.full((ds.n_classes,), -1, dtype=torch.long)
    relabel[keep] = torch.arange(len(keep))
    train_mask, test_mask = torch.isin(ds.y_train, keep), torch.isin(ds.y_test, keep)
    x, y = ds.x_train[train_mask], relabel[ds.y_train[train_mask]]
    if n_train is not None:
        pick = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:check_int("n_train", n_train, 1)]
        x, y = x[pick], y[pick]
    return Dataset(f"{ds.name} {list(classes)}", x, y, ds.x_test[test_mask], relabel[ds.y_test[test_mask]], len(keep))


def fresh_head(net: nn.Module, n_out: int, seed: int) -> nn.Module:
    """A copy of ``net`` with a new ``output`` layer of ``n_out`` units (PyTorch's default init,
    drawn from ``seed``): the pre-trained body, a head for the new task."""
    net = copy.deepcopy(check_module("net", net))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net.output = nn.Linear(net.output.in_features, n_out)
    return net


def fine_tune_vs_scratch(pretrained: nn.Module, ds: Dataset, classes: Sequence[int], n_trains: Iterable[int],
                         seeds: Iterable[int], *, model: Mapping, init_kwargs: Mapping, **fit_kwargs) -> pd.DataFrame:
    """Train on ``n_train`` examples of ``classes`` (:func:`class_subset`, drawn by the seed) from two
    starts: ``pretrained`` with a fresh head (:func:`fresh_head`) and ``mlp(n_features, k, **model)``
    initialized with ``init_kwargs``. One row per (n_train, seed, start) with the test accuracy."""
    fit_kwargs.setdefault("eval_every", fit_kwargs.get("steps", 500))
    rows = []
    for n_train in n_trains:
        for seed in seeds:
            task = class_subset(ds, classes, n_train=n_train, seed=seed)
            random_net = init.init_(models.mlp(task.n_features, task.n_classes, **model), **init_kwargs, seed=seed)
            for start, net in (("pre-trained", fresh_head(pretrained, task.n_classes, seed)), ("random", random_net)):
                result = train.fit(net, task, seed=seed, **fit_kwargs)
                rows.append({"n_train": n_train, "seed": seed, "start": start, "test accuracy": result.final()})
    return pd.DataFrame(rows)


#: The explorer's schemes, by name, each a function of the activation giving ``init_``'s arguments.
EXPLORER_SCHEMES: dict[str, Callable[[str], dict]] = {
    "Kaiming": lambda act: dict(scheme="kaiming_normal", activation=act),
    "Xavier (gain 1)": lambda act: dict(scheme="xavier_normal", activation="identity"),
}


def explorer_outputs(scheme: str, activation: str, depth: int, multiplier: float,
                     x: torch.Tensor) -> list[torch.Tensor]:
    """Activation outputs of a fresh bias-free MLP of width 128 (weights × ``multiplier``) on ``x``."""
    check_choice("scheme", scheme, EXPLORER_SCHEMES)
    net = models.mlp(x.shape[1], 10, depth=depth, width=128, activation=activation, bias=False)
    init.init_(net, scale=check_number("multiplier", multiplier), seed=0, **EXPLORER_SCHEMES[scheme](activation))
    return layer_outputs(net, x)


def scale_ratios(x: torch.Tensor, activations: Sequence[str], multipliers: Sequence[float],
                 depth: int = 30) -> dict[tuple[str, str, float], float]:
    """Std of the last layer's outputs over that of the first, for every explorer scheme,
    activation and multiplier: (scheme, activation, multiplier) → ratio."""
    ratios = {}
    for scheme in EXPLORER_SCHEMES:
        for act in activations:
            for m in multipliers:
                outs = explorer_outputs(scheme, act, depth, m, x)
                ratios[(scheme, act, m)] = float(outs[-1].std() / outs[0].std())
    return ratios


def second_moment(activation: str, q: float, nodes: int = 101) -> float:
    r""":math:`\mathbb{E}[\phi(z)^2]` for :math:`z \sim N(0, q)` by Gauss–Hermite quadrature
    (``nodes`` points, in float64); exact for polynomials, accurate for smooth activations.

    >>> round(second_moment("tanh", 1e-6) / 1e-6, 4), round(second_moment("gelu", 0.0), 4)
    (1.0, 0.0)
    """
    q = check_number("q", q, minimum=0.0)
    z, w = np.polynomial.hermite_e.hermegauss(check_int("nodes", nodes, minimum=1))
    phi = models.activation(activation)(torch.as_tensor(math.sqrt(q) * z))
    return float((phi**2).numpy() @ (w / w.sum()))
