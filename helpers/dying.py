r"""Dead ReLU units: watching them die during training, and the dead-ReLU chapter's experiments.

A ReLU unit :math:`a = \max(0, w^\top x + b)` is *dead on a data set* when it outputs 0 for every
example of the set (Lu et al. 2019, "Dying ReLU and initialization"): the gradient reaching
:math:`w` and :math:`b` is a sum over the examples on which it is active, hence exactly 0. A unit
is *frozen* when its output varies by less than ``tol`` across the set (a dead ReLU, a saturated
sigmoid). Both are measured with :mod:`helpers.stats`.

- :class:`DeadUnitWatch` — a :class:`helpers.train.Callback`: the dead, frozen and zero shares of
  every activation layer on a whole data set every few steps, and the zero share of every
  training batch (the "relu_rate");
- :func:`dead_on_batches` — the dead share on random batches, which overstates death;
- :func:`scaled`, :func:`pixels_net`, :func:`run`, :func:`final`, :func:`sweep`,
  :func:`remedy_table` — the unnormalized-pixels experiment (digits scaled to [0, top], one
  hidden layer of 300 units, SGD), memoized;
- :func:`diary_net`, :func:`fit_table` — the debugging diary's nets (one with its gradient
  blocked) and a table of their runs;
- :func:`neuron_loss`, :func:`neuron_loss_closed`, :func:`neuron_paths`, :func:`sign_flips` —
  one ReLU neuron :math:`\mathrm{ReLU}(wx)` fitted to :math:`\mathrm{ReLU}(x)`;
- :func:`born_dead`, :func:`born_dead_closed` — the share of random ReLU nets dead at
  initialization; without biases :math:`1 - (1 - 2^{-N})^L` for width :math:`N`, depth :math:`L`.

>>> from helpers.data import make_blobs
>>> from helpers.models import mlp
>>> blobs = make_blobs(100)
>>> watch = DeadUnitWatch(blobs.x_train, every=5)
>>> _ = train.fit(mlp(2, 4, depth=1, width=8), blobs, steps=10, progress=False, callbacks=[watch])
>>> sorted(watch.to_frame().query("quantity == 'dead'").step.unique().tolist())
[0, 5, 10]
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import data, init, models, stats, train
from ._checks import check_choice, check_int, check_number
from .hooks import Hooks, capture
from .layers import activation_layers

QUANTITIES = ("dead", "frozen", "zero", "batch_zero")


class DeadUnitWatch(train.Callback):
    """Measure, for each activation layer, the shares of dead units, frozen units and zero outputs
    on the whole of ``x`` (in eval mode, without gradients) at the start, every ``every`` steps
    and at the end; and the zero share of every training batch (``batch_zero``, the relu_rate).

    Use it as ``train.fit(model, data, callbacks=[watch])``; :meth:`to_frame` gives the
    measurements, with ``step`` = the number of updates the weights had received.
    """

    def __init__(self, x: torch.Tensor, every: int = 5, tol: float = 1e-3) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor batch, got {type(x).__name__}")
        self.x, self.every = x, check_int("every", every, minimum=1)
        self.tol = check_number("tol", tol, minimum=0.0, strict=True)
        self.rows: list[tuple] = []
        self.batch: list[tuple] = []
        self.hooks = Hooks()
        self.last: int | None = None

    def measure(self, model: nn.Module, step: int) -> None:
        """Measure on the whole of ``x``, recorded as ``step``."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), capture(dict(activation_layers(model))) as seen:
                model(self.x.to(next(model.parameters(), self.x).device))
        finally:
            model.train(was_training)
        for name, out in seen.items():
            self.rows += [(step, name, "dead", float(stats.dead_units(out).float().mean())),
                          (step, name, "frozen", float(stats.frozen_units(out, self.tol).float().mean())),
                          (step, name, "zero", float((out == 0).float().mean()))]
        self.last = step

    def _batch_hook(self, name: str):
        def hook(module, inputs, out) -> None:
            if torch.is_grad_enabled():  # a training pass; keep a tensor: no sync inside the loop
                self.batch.append((self.run.step, name, out.numel() - torch.count_nonzero(out), out.numel()))

        return hook

    def on_fit_start(self, run: train.Run) -> None:
        self.run = run
        for name, module in activation_layers(run.model):
            self.hooks.forward(module, self._batch_hook(name))
        self.measure(run.model, 0)

    def after_step(self, run: train.Run) -> None:
        if run.step % self.every == 0:
            self.measure(run.model, run.step)

    def on_fit_end(self, run: train.Run) -> None:
        self.hooks.remove()
        if self.last != run.step:
            self.measure(run.model, run.step)

    def to_frame(self) -> pd.DataFrame:
        """Columns step, layer, quantity (one of ``QUANTITIES``), value."""
        batch = [(step, name, "batch_zero", int(zeros) / n) for step, name, zeros, n in self.batch]
        return pd.DataFrame(self.rows + batch, columns=["step", "layer", "quantity", "value"])


def final(frame: pd.DataFrame, quantity: str, last: int | None = None) -> float:
    """The last measurement of ``quantity`` in a :class:`DeadUnitWatch` frame (mean over layers);
    with ``last=k``, the mean over its last ``k`` steps.

    >>> final(pd.DataFrame({"step": [0, 5, 5], "quantity": "dead", "value": [0.0, 0.25, 0.75]}), "dead")
    0.5
    """
    check_choice("quantity", quantity, QUANTITIES)
    rows = frame[frame.quantity == quantity]
    top = rows.step.max()
    rows = rows[rows.step == top] if last is None else rows[rows.step > top - check_int("last", last, minimum=1)]
    return float(rows.value.mean())


def dead_on_batches(out: torch.Tensor, size: int, n: int = 50, seed: int = 0) -> float:
    """Mean share of units dead on ``n`` random batches of ``size`` rows of ``out``: at least the
    whole-set share (a unit dead on the set is dead on every batch), the more so the smaller ``size``."""
    check_int("size", size, minimum=1)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    picks = [torch.randperm(len(out), generator=gen)[:size] for _ in range(check_int("n", n, minimum=1))]
    return float(np.mean([stats.frac_dead(out[i]) for i in picks]))


# -- the unnormalized-pixels experiment -----------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _unit() -> data.Dataset:
    return data.load_digits("unit")


def scaled(top: float) -> data.Dataset:
    """The digits with pixel values from 0 to ``top`` (255: raw bytes; 1: divided by 255)."""
    unit = _unit()
    top = check_number("top", top, minimum=0.0, strict=True)
    return data.Dataset(f"digits 0-{top:g}", unit.x_train * top, unit.y_train, unit.x_test * top, unit.y_test, 10)


def pixels_net(activation: str = "relu", norm: str | None = None, scheme: str = "normal", bias: float = 0.0,
               seed: int = 0, in_features: int = 64) -> nn.Module:
    """The unnormalized-pixels post's MLP: one hidden layer of 300 units, weights N(0, 0.01²), biases 0."""
    net = models.mlp(in_features, 10, depth=1, width=300, activation=activation, norm=norm)
    return init.init_(net, scheme, std=0.01, bias=bias, activation="relu", seed=seed)


_RUNS: dict[tuple, tuple[train.FitResult, pd.DataFrame]] = {}


def run(activation: str = "relu", lr: float = 0.5, top: float = 255, seed: int = 0, steps: int = 100,
        optimizer: str = "sgd", norm: str | None = None, scheme: str = "normal", bias: float = 0.0,
        clip_norm: float | None = None, every: int = 10) -> tuple[train.FitResult, pd.DataFrame]:
    """Train :func:`pixels_net` on :func:`scaled` ``(top)`` digits (SGD or Adam, batches of 256) with
    a :class:`DeadUnitWatch` attached; return ``(FitResult, watch frame)``, memoized."""
    key = (activation, lr, top, seed, steps, optimizer, norm, scheme, bias, clip_norm, every)
    if key not in _RUNS:
        ds = scaled(top)
        watch = DeadUnitWatch(ds.x_train, every=every)
        result = train.fit(pixels_net(activation, norm, scheme, bias, seed), ds, steps=steps, batch_size=256, lr=lr,
                           optimizer=optimizer, clip_norm=clip_norm, seed=seed, eval_every=50, progress=False,
                           callbacks=[watch])
        _RUNS[key] = (result, watch.to_frame())
    return _RUNS[key]


def sweep(settings: Mapping[str, Mapping] | Iterable[Mapping], seeds: Sequence[int] = (0,),
          label: str = "setting") -> pd.DataFrame:
    """One row per setting and seed of :func:`run`: test accuracy, diverged (and at which step),
    the last whole-set shares ``dead``, ``frozen``, ``zero``, and the relu_rate of the last 20 steps.

    ``settings`` is a list of :func:`run` arguments (they become columns) or a dict
    name → arguments (the name goes in column ``label``).
    """
    named = settings.items() if isinstance(settings, Mapping) else ((None, s) for s in settings)
    rows = []
    for name, setting in named:
        for seed in seeds:
            result, watch = run(seed=seed, **setting)
            rows.append(({label: name} if name is not None else dict(setting)) | {
                "seed": seed, "test accuracy": result.final(), "diverged": result.status == "diverged",
                "diverged at step": result.diverged_step, "dead": final(watch, "dead"),
                "frozen": final(watch, "frozen"), "zero": final(watch, "zero"),
                "relu_rate (last 20 steps)": final(watch, "batch_zero", last=20)})
    return pd.DataFrame(rows)


#: The remedies for the unnormalized-pixels post's failure, each changing one argument of :func:`run`.
REMEDIES: dict[str, dict] = {
    "none (the post's failure)": {},
    "Leaky ReLU (slope 0.01)": dict(activation="leaky_relu"),
    "PReLU": dict(activation="prelu"),
    "RReLU": dict(activation="rrelu"),
    "ELU": dict(activation="elu"),
    "GELU": dict(activation="gelu"),
    "lower learning rate (0.001)": dict(lr=0.001),
    "inputs divided by 255": dict(top=1),
    "BatchNorm before the ReLU": dict(norm="batch"),
    "He initialization": dict(scheme="kaiming_normal"),
    "positive bias init (0.1)": dict(bias=0.1),
    "Adam, same lr 0.5": dict(optimizer="adam"),
    "Adam, lr 0.001": dict(optimizer="adam", lr=0.001),
}


def remedy_table(frame: pd.DataFrame, label: str = "remedy") -> pd.DataFrame:
    """Per ``label`` of a :func:`sweep` frame: runs that diverged, and the mean test accuracy, dead
    and frozen shares of the runs that did not (NaN where all diverged)."""
    finished = frame.copy()
    finished.loc[finished.diverged, ["test accuracy", "dead", "frozen"]] = np.nan  # no final value
    table = finished.groupby(label, sort=False).agg(**{
        "test accuracy": ("test accuracy", "mean"), "dead units": ("dead", "mean"),
        "frozen units": ("frozen", "mean")})
    runs = frame.groupby(label, sort=False).diverged
    table.insert(0, f"diverged (of {runs.size().max()})", runs.sum())
    return table


# -- the debugging diary's nets -------------------------------------------------------------------
class BlockGradient(nn.Module):
    """Identity in the forward pass; stops the gradient (the debugging diary's "gradblock")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach()


#: variant → (activation, norm) of the debugging diary's MLP.
DIARY_VARIANTS: dict[str, tuple[str, str | None]] = {
    "ReLU": ("relu", None), "ReLU, gradient blocked": ("relu", None), "tanh": ("tanh", None),
    "leaky ReLU": ("leaky_relu", None), "BatchNorm + ReLU": ("relu", "batch"),
    "BatchNorm + leaky ReLU": ("leaky_relu", "batch")}


def diary_net(variant: str, seed: int) -> nn.Module:
    """Three hidden layers of 64 (PyTorch's default init); "gradient blocked" trains only the head."""
    act, norm = DIARY_VARIANTS[check_choice("variant", variant, DIARY_VARIANTS)]
    torch.manual_seed(check_int("seed", seed, minimum=0))
    net = models.mlp(64, 10, depth=3, width=64, activation=act, norm=norm)
    if variant == "ReLU, gradient blocked":  # the body keeps its random weights
        layers = list(net.named_children())
        net = nn.Sequential(OrderedDict(layers[:-1] + [("block", BlockGradient()), layers[-1]]))
    return net


def fit_table(runs: Mapping[tuple[str, int], train.FitResult]) -> pd.DataFrame:
    """One row per ``(variant, seed)`` run: status, the step it diverged at, the training accuracy,
    and the last and the largest summed ``|gradient|`` (``grad_abs_sum``)."""
    return pd.DataFrame([{"variant": v, "seed": s, "status": r.status, "diverged at step": r.diverged_step,
                          "accuracy on the batch": r.final("accuracy", "train"),
                          "final gradient sum": r.curve("grad_abs_sum").value.iloc[-1],
                          "largest gradient sum": r.curve("grad_abs_sum").value.max()}
                         for (v, s), r in runs.items()])


# -- one neuron -----------------------------------------------------------------------------------
def neuron_loss(w: float, slope: float = 0.0, positive_only: bool = False, n: int = 200_000, seed: int = 0) -> float:
    """Monte Carlo MSE of LeakyReLU_slope(w x) against ReLU(x), x ~ N(0, 1) (or ``|N(0, 1)|``)."""
    x = torch.randn(check_int("n", n, minimum=1), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x.abs() if positive_only else x
    return float(((nn.functional.leaky_relu(w * x, slope) - x.clamp_min(0)) ** 2).mean())


def neuron_loss_closed(w, slope: float = 0.0):
    """The same loss in closed form: ((w² + (1 − αw)²)/2 for w < 0, ((1 − w)² + α²w²)/2 for w ≥ 0.

    >>> float(neuron_loss_closed(-1.0)), float(neuron_loss_closed(1.0))
    (1.0, 0.0)
    """
    w = np.asarray(w, dtype=float)
    return np.where(w < 0, (w**2 + (1 - slope * w) ** 2) / 2, ((1 - w) ** 2 + slope**2 * w**2) / 2)


def neuron_paths(optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.0, amsgrad: bool = False,
                 slope: float = 0.0, w0: Sequence[float] = (-10.0, -1.0), seeds: int = 3, steps: int = 2000,
                 batch: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Train ``len(w0) × seeds`` independent one-weight neurons LeakyReLU_slope(w x) on fresh
    N(0, 1) batches against ReLU(x), each with its own data, by the MSE.

    Returns the path of w, ``(steps + 1, len(w0), seeds)``, and each step's batch curvature
    c = 2·mean(x² 1(x < 0)), ``(steps, len(w0), seeds)``: for w < 0, plain SGD maps w to (1 − lr·c)·w.
    """
    check_int("seeds", seeds, minimum=1)
    check_int("steps", steps, minimum=1)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    w = torch.tensor([[float(a)] * seeds for a in w0], requires_grad=True)
    opt = train.make_optimizer([w], optimizer, lr, momentum=momentum, amsgrad=amsgrad)
    path, curvature = torch.empty(steps + 1, *w.shape), torch.empty(steps, *w.shape)
    path[0] = w.detach()
    for step in range(1, steps + 1):  # a teaching loop: one weight, fresh data at every step
        x = torch.randn(*w.shape, check_int("batch", batch, minimum=1), generator=gen)
        curvature[step - 1] = 2 * (x**2 * (x < 0)).mean(-1)
        loss = ((nn.functional.leaky_relu(w[..., None] * x, slope) - x.clamp_min(0)) ** 2).mean(-1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        path[step] = w.detach()
    return path, curvature


def sign_flips(path: torch.Tensor, curvature: torch.Tensor, lr: float) -> pd.DataFrame:
    """Per seed of a one-start :func:`neuron_paths` run: the batches with c > 1/lr (which flip the
    sign of a negative w under plain SGD), the first of them, the step w crossed 0, the last step
    that moved w and the final w."""
    p, c = path[:, 0], curvature[:, 0]
    flip, moves = c > 1 / check_number("lr", lr, minimum=0.0, strict=True), p[1:] != p[:-1]

    def where(mask: torch.Tensor, at: int, shift: int = 1) -> int | None:  # the at-th True, as a step
        hits = mask.nonzero().flatten()
        return int(hits[at]) + shift if len(hits) else None

    return pd.DataFrame([{"seed": s, "batches with c > 1/lr": int(flip[:, s].sum()),
                          "first such step": where(flip[:, s], 0), "crossed 0 at step": where(p[:, s] > 0, 0, 0),
                          "last step that moved w": where(moves[:, s], -1), "final w": float(p[-1, s])}
                         for s in range(p.shape[1])])


def weight_text(value: float) -> str:
    """A final weight for the tables: 3 decimals, or scientific notation when that close to 0.

    >>> weight_text(0.99951), weight_text(-2e-5)
    ('1.000', '-2.0e-05')
    """
    return f"{value:.1e}" if abs(value) < 5e-4 else f"{value + 0.0:.3f}"  # + 0.0 turns -0.0 into 0.0


# -- born dead ------------------------------------------------------------------------------------
BIASES = ("none", "symmetric", "positive")


def born_dead(width: int, depth: int, bias: str = "none", sigma_b: float = 0.1, trials: int = 2000,
              points: int = 8, seed: int = 0) -> list[float]:
    """Share of random ReLU nets (input dimension 1, He-normal weights) that are dead — some layer
    is 0 for all ``points`` inputs in (0, 1] — after each of ``depth`` hidden layers.
    bias: ``none``, ``symmetric`` N(0, σ_b²) or ``positive`` ``|N(0, σ_b²)|``."""
    check_choice("bias", bias, BIASES)
    for name, value in (("width", width), ("depth", depth), ("trials", trials), ("points", points)):
        check_int(name, value, minimum=1)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    h = torch.linspace(1 / points, 1, points).expand(trials, 1, points)
    dead, fan_in, out = torch.zeros(trials, dtype=torch.bool), 1, []
    for _ in range(depth):
        z = torch.randn(trials, width, fan_in, generator=gen) * math.sqrt(2 / fan_in) @ h
        if bias != "none":
            b = torch.randn(trials, width, 1, generator=gen) * sigma_b
            z = z + (b.abs() if bias == "positive" else b)
        h, fan_in = z.clamp_min(0), width
        dead |= (h == 0).flatten(1).all(1)
        out.append(float(dead.float().mean()))
    return out


def born_dead_closed(width: int, depth: int) -> float:
    """P(a bias-free ReLU net of ``depth`` hidden layers of ``width`` is dead at init), inputs > 0.

    >>> born_dead_closed(1, 1), round(born_dead_closed(13, 50), 4)
    (0.5, 0.0061)
    """
    return 1 - (1 - 2.0 ** -check_int("width", width, minimum=1)) ** check_int("depth", depth, minimum=0)
