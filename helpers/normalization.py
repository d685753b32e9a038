r"""The normalization chapter's experiments: BatchNorm and its cousins, measured.

BatchNorm (Ioffe & Szegedy 2015) normalizes each channel over the batch,
:math:`\hat x = (x - \mu_\mathcal{B}) / \sqrt{\sigma_\mathcal{B}^2 + \epsilon}`, then scales and
shifts. The chapter writes that from scratch; this module holds what measures it:

- :func:`compare_with_torch` — a from-scratch BatchNorm against ``nn.BatchNorm1d/2d``;
- :class:`PerWorkerBatchNorm2d` and :class:`CNNRuns` — "ghost batches" of a few images each,
  Wu & He (2018)'s images per GPU on one CPU, and the memoized CNN runs that use them;
- :func:`fixed_batch_run`, :func:`outcome`, :func:`gradient_story` — the debugging diary's
  full-batch runs ("BatchNorm as a damper") and what their gradient logs say;
- :func:`sweep_grid`, :func:`map_summary` — the learning rate × init scale map;
- :func:`ioffe_run`, :func:`drift_stats` — Ioffe & Szegedy's Figure 1, small;
- :func:`placement_runs` — BatchNorm before or after the activation.

The figures are in :mod:`helpers.normalization_plots`.

>>> layer = nn.BatchNorm1d(3)
>>> def no_op(x, gamma, beta, mean, var, *, training):
...     return x
>>> compare_with_torch(no_op, layer, (8, 3)) > 0.1          # an identity is not BatchNorm
True
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import init, models, train
from ._checks import check_choice, check_int
from .hooks import capture
from .seed import seed_everything

FITS = 0.99  # a run "fits" its batch when it reaches this accuracy on it
OUTCOMES = ("fits", "stalls", "diverges")
ACT_NAMES = {"relu": "ReLU", "leaky_relu": "leaky ReLU"}


def compare_with_torch(ours: Callable, layer: nn.Module, shape: Sequence[int], steps: int = 5,
                       seed: int = 0) -> float:
    """Largest ``|ours − PyTorch|`` over outputs and running stats: ``steps`` training batches, then eval.

    ``ours(x, gamma, beta, running_mean, running_var, *, training)`` updates the running
    statistics in place; ``layer`` is an ``nn.BatchNorm1d``/``2d`` given random γ, β.
    """
    check_int("steps", steps, minimum=1)
    torch.manual_seed(seed)
    c = shape[1]
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.normal_()
    gamma, beta = layer.weight.detach().clone(), layer.bias.detach().clone()
    r_mean, r_var = torch.zeros(c), torch.ones(c)
    worst = 0.0
    layer.train()
    for _ in range(steps):
        x = 3 * torch.randn(shape) + 1
        out = ours(x, gamma, beta, r_mean, r_var, training=True)
        worst = max(worst, (out - layer(x)).abs().max().item(), (r_mean - layer.running_mean).abs().max().item(),
                    (r_var - layer.running_var).abs().max().item())
    layer.eval()
    x = 3 * torch.randn(shape) + 1
    with torch.no_grad():
        out = ours(x, gamma, beta, r_mean, r_var, training=False)
        return max(worst, (out - layer(x)).abs().max().item())


def randomize_affine(layer: nn.Module) -> nn.Module:
    """Draw every parameter of ``layer`` (γ, β) from N(0, 1), in place; return it."""
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_()
    return layer


class PerWorkerBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics come from blocks of ``per_worker`` examples.

    Emulates ``len(batch) / per_worker`` GPUs ("workers"), each normalizing its own examples
    (a "ghost batch"); the gradient is still averaged over the whole batch. The running
    statistics move by ``momentum`` towards the workers' average batch statistics, once per step.

    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(8, 2, 3, 3)
    >>> bool(torch.allclose(PerWorkerBatchNorm2d(2, 8)(x), nn.BatchNorm2d(2)(x), atol=1e-6))
    True
    """

    def __init__(self, num_features: int, per_worker: int) -> None:
        super().__init__(num_features)
        self.per_worker = check_int("per_worker", per_worker, minimum=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        n, c, h, w = x.shape
        if n % self.per_worker:
            raise ValueError(f"a batch of {n} does not split into workers of per_worker={self.per_worker}")
        xw = x.view(n // self.per_worker, self.per_worker, c, h, w)      # worker, example, channel, H, W
        mean = xw.mean((1, 3, 4), keepdim=True)
        var = xw.var((1, 3, 4), unbiased=False, keepdim=True)
        x_hat = ((xw - mean) / torch.sqrt(var + self.eps)).view(n, c, h, w)
        with torch.no_grad():
            m = self.per_worker * h * w
            self.running_mean.lerp_(mean.mean(0).flatten(), self.momentum)
            self.running_var.lerp_(var.mean(0).flatten() * m / (m - 1), self.momentum)
        return x_hat * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class CNNRuns:
    """``models.small_cnn`` trained on ``images`` with SGD (momentum 0.9), memoized by setting.

    Calling it as ``runs(norm, per_worker=None, channels=(16, 32), seed=0)`` returns a
    :class:`~helpers.train.FitResult`; with ``norm="batch"`` and ``per_worker`` below the batch
    size, every BatchNorm is a :class:`PerWorkerBatchNorm2d`. A setting that cannot split the
    batch (another norm, or ``per_worker`` ≥ the batch) is one ordinary run, trained once.
    """

    def __init__(self, images, *, steps: int = 150, batch_size: int = 64, lr: float = 0.05,
                 momentum: float = 0.9, eval_every: int = 20) -> None:
        self.images, self.runs = images, {}
        self.settings = dict(steps=steps, batch_size=check_int("batch_size", batch_size, minimum=2), lr=lr,
                             momentum=momentum, eval_every=eval_every)

    def __call__(self, norm: str | None, per_worker: int | None = None, channels: Sequence[int] = (16, 32),
                 seed: int = 0) -> train.FitResult:
        check_choice("norm", norm, models.CNN_NORMS)
        if norm != "batch" or (per_worker or self.settings["batch_size"]) >= self.settings["batch_size"]:
            per_worker = None                                  # nothing to split: one ordinary run
        key = (norm, per_worker, tuple(channels), seed)
        if key not in self.runs:
            torch.manual_seed(seed)
            net = models.small_cnn(norm=norm, channels=channels)
            for stage in net.children():
                if per_worker is not None and isinstance(getattr(stage, "norm", None), nn.BatchNorm2d):
                    stage.norm = PerWorkerBatchNorm2d(stage.norm.num_features, per_worker)
            self.runs[key] = train.fit(net, self.images, seed=seed, progress=False, **self.settings)
        return self.runs[key]


@torch.no_grad()
def label_probability(model: nn.Module, x: torch.Tensor, y: torch.Tensor, index: int,
                      mates: torch.Tensor) -> float:
    """Softmax probability of example ``index``'s true label, classified in one batch with ``mates``.

    In training mode this also moves the model's running statistics: pass a copy.
    """
    batch = torch.cat([x[index:index + 1], x[mates]])
    return model(batch).softmax(dim=1)[0, y[index]].item()


@torch.no_grad()
def accuracy_in_train_mode(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                           seed: int = 0) -> float:
    """Accuracy with BatchNorm using each evaluation batch's statistics (a forgotten ``eval()``).

    Runs a copy of ``model`` in training mode over ``x`` in shuffled batches of ``batch_size``.
    """
    check_int("batch_size", batch_size, minimum=1)
    net = copy.deepcopy(model).train()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    correct = sum((net(x[idx]).argmax(1) == y[idx]).sum().item() for idx in order.split(batch_size))
    return correct / len(order)


def fixed_batch_run(data, activation: str, norm: str | None, lr: float, *, scale: float = 1.0,
                    seed: int = 0, steps: int = 150) -> train.FitResult:
    """The debugging diary's loop: a 6-layer MLP (width 64, Kaiming init × ``scale``) trained
    full-batch on ``data``, an ``(x, y)`` pair such as one fixed batch of 128 digits."""
    x, _ = data
    net = models.mlp(x.shape[1], 10, depth=6, width=64, activation=activation, norm=norm)
    init.init_(net, "kaiming_normal", activation=activation, scale=scale, seed=seed)
    return train.fit(net, data, steps=steps, batch_size=None, lr=lr, eval_every=steps, seed=seed,
                     progress=False)


def outcome(result: train.FitResult, fits: float = FITS) -> str:
    """'diverges', 'fits' (training accuracy ≥ ``fits``, evaluation mode) or 'stalls' (neither)."""
    if result.status == "diverged":
        return "diverges"
    return "fits" if result.final("accuracy", "train") >= fits else "stalls"


def net_label(activation: str, norm: str | None) -> str:
    """'ReLU', 'leaky ReLU + BatchNorm', … for the damper's nets."""
    return ACT_NAMES.get(activation, activation) + (" + BatchNorm" if norm else "")


def outcome_counts(runs: Mapping[tuple, train.FitResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per run (``(activation, norm, seed)`` keys) its net and :func:`outcome`; and the seeds
    counted per net and outcome."""
    rows = pd.DataFrame([{"net": net_label(a, n), "seed": s, "outcome": outcome(r)} for (a, n, s), r in runs.items()])
    counts = pd.crosstab(rows.net, rows.outcome).reindex(index=list(dict.fromkeys(rows.net)), columns=OUTCOMES,
                                                         fill_value=0)
    counts.insert(0, "seeds", counts.sum(axis=1))
    counts.columns.name, counts.index.name = None, "net"
    return rows, counts


def grad_sum(result: train.FitResult) -> pd.Series:
    """The summed absolute gradient of every step (the debugging diary's log)."""
    return result.curve("grad_abs_sum").value


def fall(result: train.FitResult) -> float:
    """How many times smaller the gradient sum is at the last step than at its peak."""
    g = grad_sum(result)
    return float(g.max() / g.iloc[-1])


@torch.no_grad()
def zero_share(model: nn.Sequential, x: torch.Tensor) -> float:
    """The share of exact zeros among the outputs of the layer before ``model``'s last, on ``x``."""
    return (model[:-1](x) == 0).float().mean().item()


def gradient_story(runs: Mapping[tuple, train.FitResult], x: torch.Tensor, seeds: Mapping) -> SimpleNamespace:
    """The numbers behind the damper's gradient logs (``runs`` as for :func:`outcome_counts`).

    Picks the ReLU run that stalls with the largest :func:`fall` and the first leaky ReLU run
    that diverges (``shown``, by label, with seed 0 of both nets with BatchNorm); with BatchNorm,
    compares the two nets' gradient sums step by step.
    """
    stall = [s for s in seeds[None] if outcome(runs["relu", None, s]) == "stalls"]
    blowup = [s for s in seeds[None] if outcome(runs["leaky_relu", None, s]) == "diverges"]
    relu = max(stall, key=lambda s: fall(runs["relu", None, s]), default=0)
    bn = {a: [grad_sum(runs[a, "batch", s]).to_numpy() for s in seeds["batch"]] for a in ACT_NAMES}
    ratio = [10 ** np.abs(np.log10(r / k)) for r, k in zip(bn["relu"], bn["leaky_relu"])]  # larger ÷ smaller
    leaky = blowup[0] if blowup else 0
    shown = {f"ReLU (seed {relu})": runs["relu", None, relu], "ReLU + BatchNorm (seed 0)": runs["relu", "batch", 0],
             f"leaky ReLU (seed {leaky})": runs["leaky_relu", None, leaky],
             "leaky ReLU + BatchNorm (seed 0)": runs["leaky_relu", "batch", 0]}
    return SimpleNamespace(
        stall_seeds=stall, blowup_seeds=blowup, s_relu=relu, s_leaky=leaky, shown=shown,
        bn_late_gap=[r[20:].max() - 1 for r in ratio],       # largest relative difference from step 21 on
        bn_early_ratio=max(r[:20].max() for r in ratio),
        bn_fall=[g[0] / g[-1] for g in bn["relu"]],
        zeros=[zero_share(runs["relu", None, s].model, x) for s in stall],
        growth=[grad_sum(runs["leaky_relu", None, s]).iloc[-1] / grad_sum(runs["leaky_relu", None, s]).iloc[0]
                for s in blowup],                            # last finite gradient sum ÷ first
    )


def sweep_grid(sweep: Mapping[tuple, train.FitResult]) -> pd.DataFrame:
    """``{(batchnorm, init scale, lr): FitResult}`` as rows; a diverged run's accuracy counts as 0."""
    return pd.DataFrame([{"BatchNorm": bn, "init scale": s, "learning rate": lr,
                          "accuracy": 0.0 if r.status == "diverged" else r.final("accuracy", "train")}
                         for (bn, s, lr), r in sweep.items()])


def map_summary(grid: pd.DataFrame, threshold: float, lr: float = 0.1) -> SimpleNamespace:
    """What the map says: cells that train (accuracy ≥ ``threshold``) per BatchNorm setting, the
    spread over init scales at ``lr``, the cells above the largest learning rate that trains
    without BatchNorm, and the accuracy by init scale at the smallest learning rate."""
    trains = grid.accuracy >= threshold
    best_without = grid[~grid.BatchNorm & trains]["learning rate"].max()
    high = grid[grid.BatchNorm & (grid["learning rate"] > best_without)]
    lowest = grid[grid.BatchNorm & (grid["learning rate"] == grid["learning rate"].min())]
    return SimpleNamespace(
        ok=trains.groupby(grid.BatchNorm).sum(),
        spread_at=grid[grid["learning rate"] == lr].groupby("BatchNorm").accuracy.agg(lambda a: a.max() - a.min()),
        near=grid[~trains & (grid.accuracy.round(2) >= threshold)],   # prints as the threshold, is below it
        best_lr_without=best_without, high=high, high_trains=(high.accuracy >= threshold).to_numpy(),
        short=high[high.accuracy < threshold],
        small_lr=lowest.set_index("init scale").accuracy.sort_index(),
    )


def lrs_that_train(grid: pd.DataFrame, scale: float, threshold: float, batchnorm: bool = False) -> list[float]:
    """The learning rates at which the net reaches ``threshold`` at init ``scale``."""
    rows = grid[(grid.BatchNorm == batchnorm) & (grid["init scale"] == scale) & (grid.accuracy >= threshold)]
    return sorted(rows["learning rate"])


def lr_range(lrs: Sequence[float]) -> str:
    """'at learning rates 0.1–0.3', 'only at learning rate 0.01' or 'at none'."""
    if not lrs:
        return "at none"
    return f"only at learning rate {lrs[0]:g}" if len(lrs) == 1 else f"at learning rates {lrs[0]:g}–{lrs[-1]:g}"


class _KeepTrainingInput(train.Callback):
    """Copy the captured input of this step's training forward pass (evaluation passes overwrite it)."""

    def __init__(self, seen: dict, key: str) -> None:
        self.seen, self.key = seen, key

    def after_backward(self, run: train.Run) -> None:
        self.seen["train"] = self.seen[self.key]


def ioffe_run(data, norm: str | None = None, *, seed: int = 0, steps: int = 600, every: int = 20,
              lr: float = 0.5, batch_size: int = 60) -> pd.DataFrame:
    """Ioffe & Szegedy (2015), Figure 1: a 3×100 sigmoid MLP, plain SGD on random batches of 60.

    Every ``every`` steps (and at step 1): test accuracy, and the 15th, 50th and 85th percentiles
    over the training batch of the input to each of ``hidden3``'s sigmoids (arrays of 100).
    """
    check_int("every", every, minimum=1)
    seed_everything(seed)
    net = models.mlp(data.x_train.shape[1], 10, depth=3, width=100, activation="sigmoid", norm=norm)
    rows = []

    def record(run: train.Run) -> None:
        q = torch.quantile(seen["train"], torch.tensor([0.15, 0.5, 0.85]), dim=0)   # 3 × 100 units
        acc = train.evaluate(run.model, data.x_test, data.y_test)["accuracy"]
        rows.append({"step": run.step, "accuracy": acc, "p15": q[0].numpy(), "p50": q[1].numpy(),
                     "p85": q[2].numpy()})

    with capture({"z": net.hidden3.act}, what="input") as seen:
        train.fit(net, data, steps=steps, batch_size=batch_size, lr=lr, sampling="random", eval_every=steps,
                  seed=seed, progress=False, callbacks=[_KeepTrainingInput(seen, "z"), train.Every(every, record)])
    return pd.DataFrame(rows)


def drift_stats(run: pd.DataFrame) -> tuple[float, float]:
    """Of an :func:`ioffe_run`: the drift of each unit's median from the first to the last record,
    over its mean 15–85 spread (mean over units); and the median over units of the spread's growth.
    """
    p15, p50, p85 = (np.stack(run[c]) for c in ["p15", "p50", "p85"])     # steps × units
    spread = p85 - p15
    drift = np.abs(p50[-1] - p50[0]) / spread.mean(0)
    return float(drift.mean()), float(np.median(spread[-1] / spread[0]))


def ioffe_summary(runs: Mapping[tuple, pd.DataFrame], step: int = 200) -> pd.DataFrame:
    """One row per ``(norm, seed)`` run: test accuracy at ``step`` and at the end, and :func:`drift_stats`."""
    return pd.DataFrame([{"BatchNorm": norm == "batch", "seed": seed,
                          f"test acc., step {step}": run.set_index("step").accuracy[step],
                          f"test acc., step {run.step.iloc[-1]}": run.accuracy.iloc[-1],
                          **dict(zip(["drift of median ÷ spread", "spread growth (×)"], drift_stats(run)))}
                         for (norm, seed), run in runs.items()])


def placement_runs(data, activations: Iterable[str], positions: Iterable[str] = ("before", "after"),
                   seeds: Iterable[int] = range(3), **fit_args) -> tuple[pd.DataFrame, dict]:
    """6-layer MLPs (width 64) with BatchNorm before or after the activation, 150 steps of SGD
    (batch 64, lr 0.1) on ``data``: rows of final training loss and test accuracy, and the nets."""
    settings = dict(steps=150, batch_size=64, lr=0.1) | fit_args
    rows, nets = [], {}
    for act in activations:
        for position in positions:
            check_choice("positions", position, ("before", "after"))
            for seed in seeds:
                torch.manual_seed(seed)
                net = models.mlp(data.x_train.shape[1], 10, depth=6, width=64, activation=act, norm="batch",
                                 norm_position=position)
                r = train.fit(net, data, eval_every=settings["steps"], seed=seed, progress=False, **settings)
                nets[act, position, seed] = r.model
                rows.append({"activation": act, "BatchNorm": position, "seed": seed,
                             "train loss": r.final("eval_loss", "train"), "test accuracy": r.final()})
    return pd.DataFrame(rows), nets
