"""One small, deterministic training loop with callbacks, returning a tidy history.

:func:`fit` trains any classifier on a :class:`helpers.data.Dataset` (or an ``(x, y)``
pair) with SGD (optionally with momentum), Adam, or any optimizer you construct, and
calls :class:`Callback` objects at fixed points of each step, in the style of fastai's
callbacks. What the chapters used to write as private loops is a callback each:

- :class:`ClipGradNorm`, :class:`ClipGradValue` — gradient clipping (``clip_norm=``,
  ``clip_value=``);
- :class:`Every` — call a function every ``n`` steps (and at step 1): a measurement during
  training, in one line;
- a :class:`helpers.monitor.Monitor` passed as ``monitor=`` is attached for the run.

A loss that becomes NaN or infinite ends the run with ``status="diverged"`` and the step
it happened: no exception, because several chapters diverge on purpose.

>>> from helpers.data import make_blobs
>>> from helpers.models import mlp
>>> seen = []
>>> result = fit(mlp(2, 4, depth=2, width=16), make_blobs(200), steps=20, progress=False,
...              callbacks=[Every(10, lambda run: seen.append(run.step))])
>>> result.status, seen
('ok', [1, 10, 20])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_choice, check_int, check_number
from ._env import building_book
from .inputs import as_split
from .layers import check_module
from .monitor import Monitor
from .seed import seed_everything

OPTIMIZERS = ("sgd", "adam", "adamw")
LOSSES = ("cross_entropy", "mse")
SAMPLINGS = ("epochs", "random")
HISTORY_COLUMNS = ["step", "split", "metric", "value"]


@dataclass
class Run:
    """The state of a training run, as callbacks see it.

    ``step`` counts optimizer steps from 1; ``xb, yb`` is the current batch; ``loss`` the
    current batch loss (a tensor); set ``stop = True`` to end the run after this step.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    params: list[torch.Tensor]
    steps: int
    step: int = 0
    xb: torch.Tensor | None = None
    yb: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    stop: bool = False
    rows: list[tuple] = field(default_factory=list)

    def log(self, metric: str, value: float, split: str = "train") -> None:
        """Add one row to the run's history at the current step."""
        self.rows.append((self.step, split, metric, float(value)))


class Callback:
    """Override any of these; each gets the :class:`Run`. They are called in list order."""

    def on_fit_start(self, run: Run) -> None: ...
    def after_backward(self, run: Run) -> None: ...  # gradients ready, before the optimizer step
    def after_step(self, run: Run) -> None: ...  # the weights have moved
    def on_fit_end(self, run: Run) -> None: ...  # also after a divergence or an exception


class ClipGradNorm(Callback):
    """Clip the total gradient norm to ``max_norm`` (``torch.nn.utils.clip_grad_norm_``)."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = check_number("clip_norm", max_norm, minimum=0.0, strict=True)

    def after_backward(self, run: Run) -> None:
        nn.utils.clip_grad_norm_(run.params, self.max_norm)


class ClipGradValue(Callback):
    """Clip each gradient entry to ``[-value, value]`` (``torch.nn.utils.clip_grad_value_``)."""

    def __init__(self, value: float) -> None:
        self.value = check_number("clip_value", value, minimum=0.0, strict=True)

    def after_backward(self, run: Run) -> None:
        nn.utils.clip_grad_value_(run.params, self.value)


class Every(Callback):
    """Call ``fn(run)`` after the optimizer step of step 1 and of every ``n``-th step."""

    def __init__(self, n: int, fn: Callable[[Run], None]) -> None:
        self.n, self.fn = check_int("n", n, minimum=1), fn

    def after_step(self, run: Run) -> None:
        if run.step == 1 or run.step % self.n == 0:
            self.fn(run)


class _Attach(Callback):
    """Attach a :class:`Monitor` for the run (on exit it records the last update ratio)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def on_fit_start(self, run: Run) -> None:
        self.monitor.__enter__()

    def on_fit_end(self, run: Run) -> None:
        self.monitor.__exit__(None, None, None)


@dataclass
class FitResult:
    """What :func:`fit` returns.

    ``history`` is tidy: one row per (step, split, metric). Per step, split ``"train"``
    holds ``loss``, ``grad_norm`` (total L2 norm before clipping) and ``grad_abs_sum``
    (the summed absolute gradient, the quantity of the debugging log that the dead-ReLU
    chapter reproduces). Every ``eval_every`` steps and at the end, splits ``"train"`` and
    ``"test"`` get ``eval_loss`` and ``accuracy`` over the whole split, in evaluation mode.
    """

    history: pd.DataFrame
    status: str
    diverged_step: int | None
    steps_run: int
    model: nn.Module
    monitor: Monitor | None = field(default=None, repr=False)

    def final(self, metric: str = "accuracy", split: str = "test") -> float:
        """The last recorded value of ``metric`` on ``split`` (NaN if never recorded)."""
        rows = self.history[(self.history.metric == metric) & (self.history.split == split)]
        return float(rows.value.iloc[-1]) if len(rows) else float("nan")

    def curve(self, metric: str = "loss", split: str = "train") -> pd.DataFrame:
        """The rows of one metric on one split, in step order."""
        h = self.history
        return h[(h.metric == metric) & (h.split == split)].reset_index(drop=True)


def _loss_fn(loss: str | Callable) -> Callable:
    if callable(loss):
        return loss
    check_choice("loss", loss, LOSSES)
    return nn.functional.cross_entropy if loss == "cross_entropy" else nn.functional.mse_loss


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str | Callable = "cross_entropy"
             ) -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``(x, y)`` in evaluation mode (mode restored after).

    Accuracy is NaN for the ``"mse"`` loss (float targets)."""
    loss_fn = _loss_fn(loss)
    was_training = model.training
    model.eval()
    try:
        out = model(x)
    finally:
        model.train(was_training)
    accurate = loss != "mse" and not y.is_floating_point()
    return {"eval_loss": float(loss_fn(out, y)),
            "accuracy": float((out.argmax(1) == y).float().mean()) if accurate else float("nan")}


def make_optimizer(params: Sequence[torch.Tensor], optimizer: str | Callable, lr: float, *, momentum: float = 0.0,
                   weight_decay: float = 0.0, amsgrad: bool = False) -> torch.optim.Optimizer:
    """``torch.optim.SGD``, ``Adam`` or ``AdamW`` by name, or ``optimizer(params)`` for a factory you give."""
    if callable(optimizer):
        return optimizer(params)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    adam = torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam
    return adam(params, lr=lr, weight_decay=weight_decay, amsgrad=amsgrad)


def batches(n: int, batch_size: int | None, generator: torch.Generator, sampling: str = "epochs"
            ) -> Iterator[torch.Tensor | None]:
    """Index batches forever: ``"epochs"`` reshuffles after each pass (the last partial batch
    dropped); ``"random"`` draws each batch uniformly with replacement. None = full batch."""
    check_choice("sampling", sampling, SAMPLINGS)
    while batch_size is None or batch_size >= n:
        yield None
    order, cursor = torch.randperm(n, generator=generator), 0
    while True:
        if sampling == "random":
            yield torch.randint(0, n, (batch_size,), generator=generator)
            continue
        if cursor + batch_size > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        yield order[cursor : cursor + batch_size]
        cursor += batch_size


def _as_monitor(model: nn.Module, monitor) -> Monitor | None:
    if monitor is True:
        return Monitor(model)
    if isinstance(monitor, dict):
        return Monitor(model, **monitor)
    if monitor is not None and not isinstance(monitor, Monitor):
        raise TypeError(f"monitor must be a Monitor, True, a dict of Monitor arguments or None, got {monitor!r}")
    return monitor


def _as_callbacks(callbacks, clip_norm: float | None, clip_value: float | None) -> list[Callback]:
    found = list(callbacks or [])
    for cb in found:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be helpers.train.Callback objects, got {type(cb).__name__}")
    clipping = [ClipGradValue(clip_value)] if clip_value is not None else []
    clipping += [ClipGradNorm(clip_norm)] if clip_norm is not None else []
    return clipping + found


def _log_gradients(run: Run) -> None:
    grads = [p.grad for p in run.params if p.grad is not None]
    run.log("grad_norm", torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) if grads else 0.0)
    run.log("grad_abs_sum", sum(g.abs().sum() for g in grads) if grads else 0.0)


def _train_step(run: Run, loss_fn: Callable, callbacks: list[Callback]) -> bool:
    """One optimizer step on ``run.xb, run.yb``; False if the loss is not finite."""
    run.optimizer.zero_grad(set_to_none=True)
    run.loss = loss_fn(run.model(run.xb), run.yb)
    value = float(run.loss.detach())
    run.log("loss", value)
    if not math.isfinite(value):
        return False
    run.loss.backward()
    _log_gradients(run)
    for cb in callbacks:
        cb.after_backward(run)
    run.optimizer.step()
    return True


def fit(
    model: nn.Module,
    data,
    *,
    steps: int = 500,
    batch_size: int | None = 64,
    lr: float = 0.1,
    optimizer: str | Callable = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    loss: str | Callable = "cross_entropy",
    eval_every: int | None = 50,
    seed: int = 0,
    sampling: str = "epochs",
    device: str | torch.device = "cpu",
    monitor: Monitor | dict | bool | None = None,
    callbacks: Sequence[Callback] | None = None,
    progress: bool | None = None,
) -> FitResult:
    """Train ``model`` for ``steps`` mini-batch steps; return a :class:`FitResult`.

    Args:
        model: the ``nn.Module`` to train, in place.
        data: a :class:`~helpers.data.Dataset`, or an ``(x, y)`` pair (no test split).
        steps: optimizer steps to take (stops early if the loss becomes NaN or infinite).
        batch_size: examples per step (see ``sampling``); ``None``: the whole training split.
        lr, momentum, weight_decay, amsgrad: the optimizer's settings.
        optimizer: ``"sgd"``, ``"adam"``, or a function ``params -> torch.optim.Optimizer``.
        clip_norm: clip the total gradient norm to this (:class:`ClipGradNorm`).
        clip_value: clip each gradient entry to ``[-clip_value, clip_value]``.
        loss: ``"cross_entropy"`` (labels), ``"mse"`` (float targets) or ``loss(output, y)``.
        eval_every: evaluate on both splits every this many steps (and at 0 and the end);
            ``None``: never (a callback measures what the run needs).
        seed: seeds batch sampling and any randomness inside the model (dropout, RReLU).
        sampling: ``"epochs"`` (reshuffle after each pass) or ``"random"`` (with replacement).
        device: where to train; the data are moved there batch by batch.
        monitor: a :class:`~helpers.monitor.Monitor`, ``True`` for default settings, or a
            dict of its keyword arguments; attached for the run, returned in the result.
        callbacks: :class:`Callback` objects, called after the built-in clipping.
        progress: show a tqdm bar; ``None`` means yes, except while building the book.
    """
    check_module("model", model)
    check_int("steps", steps, minimum=1)
    if eval_every is not None:
        check_int("eval_every", eval_every, minimum=1)
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    check_number("lr", lr, minimum=0.0, strict=True)
    check_number("momentum", momentum, minimum=0.0, maximum=1.0)
    check_number("weight_decay", weight_decay, minimum=0.0)
    loss_fn = _loss_fn(loss)
    x_train, y_train, x_test, y_test = as_split(data)
    device = torch.device(device)
    generator = seed_everything(seed)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    run = Run(model, make_optimizer(params, optimizer, lr, momentum=momentum, weight_decay=weight_decay,
                                    amsgrad=amsgrad), params, steps)
    monitor = _as_monitor(model, monitor)
    cbs = ([_Attach(monitor)] if monitor is not None else []) + _as_callbacks(callbacks, clip_norm, clip_value)
    splits = [("train", x_train, y_train)] + ([("test", x_test, y_test)] if x_test is not None else [])
    evaluation = _Evaluate(splits if eval_every is not None else [], eval_every or 1, loss, device)
    sampler = batches(len(x_train), batch_size, generator, sampling)
    show = (not building_book()) if progress is None else bool(progress)
    status = _loop(run, sampler, (x_train, y_train), loss_fn, [evaluation, *cbs], device, show)
    history = pd.DataFrame(run.rows, columns=HISTORY_COLUMNS)
    return FitResult(history, status, run.step if status == "diverged" else None, run.step, model, monitor)


class _Evaluate(Callback):
    """Loss and accuracy on every split at step 0, every ``every`` steps and at the end."""

    def __init__(self, splits: list, every: int, loss: str | Callable, device: torch.device) -> None:
        self.splits, self.every, self.loss, self.device = splits, every, loss, device

    def record(self, run: Run) -> None:
        for split, x, y in self.splits:
            for metric, value in evaluate(run.model, x.to(self.device), y.to(self.device), self.loss).items():
                run.log(metric, value, split)

    def on_fit_start(self, run: Run) -> None:
        self.record(run)

    def after_step(self, run: Run) -> None:
        if run.step % self.every == 0 or run.step == run.steps:
            self.record(run)


def _loop(run: Run, sampler: Iterator, train: tuple, loss_fn: Callable, cbs: list[Callback],
          device: torch.device, show: bool) -> str:
    """The steps of :func:`fit`; returns ``"ok"`` or ``"diverged"``."""
    x_train, y_train = train
    status = "ok"
    run.model.train()
    with tqdm(total=run.steps, disable=not show, desc="fit", leave=False) as bar:
        try:
            for cb in cbs[1:]:  # the monitor first, then the user's; evaluation at step 0 after them
                cb.on_fit_start(run)
            cbs[0].on_fit_start(run)
            for step in range(1, run.steps + 1):
                run.step, idx = step, next(sampler)
                xb, yb = (x_train, y_train) if idx is None else (x_train[idx], y_train[idx])
                run.xb, run.yb = xb.to(device), yb.to(device)
                if not _train_step(run, loss_fn, cbs):
                    status = "diverged"
                    break
                for cb in cbs:
                    cb.after_step(run)
                bar.update(1)
                if run.stop:
                    break
        finally:
            for cb in cbs:
                cb.on_fit_end(run)
    return status
