"""One small, deterministic training loop that returns a tidy history.

:func:`fit` trains any classifier on a :class:`helpers.data.Dataset` (or an
``(x, y)`` pair) with SGD (optionally with momentum) or Adam, optional gradient
clipping by norm or by value, and an optional :class:`helpers.monitor.Monitor`.
A loss that becomes NaN or infinite ends the run with ``status="diverged"`` and the
step it happened: no exception, because several chapters diverge on purpose.

Used by every chapter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ._checks import check_choice, check_int, check_number
from ._env import building_book
from .data import Dataset
from .monitor import Monitor
from .seed import seed_everything

OPTIMIZERS = ("sgd", "adam")
LOSSES = ("cross_entropy", "mse")
HISTORY_COLUMNS = ["step", "split", "metric", "value"]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    ``history`` is tidy: one row per (step, split, metric). Per step, split ``"train"``
    holds ``loss``, ``grad_norm`` (total L2 norm before clipping) and ``grad_abs_sum``
    (the summed absolute gradient, the quantity of the debugging log that the dead-ReLU
    chapter reproduces). Every ``eval_every`` steps and at the end, splits ``"train"`` and
    ``"test"`` get ``eval_loss`` and ``accuracy``
    over the whole split, in evaluation mode.
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


def _as_split(data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    if isinstance(data, Dataset):
        return data.x_train, data.y_train, data.x_test, data.y_test
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return data[0], data[1], None, None
    raise TypeError(f"data must be a helpers.data.Dataset or an (x, y) pair of tensors, got {type(data).__name__}")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str = "cross_entropy") -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``(x, y)`` in evaluation mode (mode restored after)."""
    check_choice("loss", loss, LOSSES)
    was_training = model.training
    model.eval()
    try:
        out = model(x)
    finally:
        model.train(was_training)
    if loss == "mse":
        return {"eval_loss": float(nn.functional.mse_loss(out, y)), "accuracy": float("nan")}
    return {
        "eval_loss": float(nn.functional.cross_entropy(out, y)),
        "accuracy": float((out.argmax(1) == y).float().mean()),
    }


def fit(
    model: nn.Module,
    data,
    *,
    steps: int = 500,
    batch_size: int | None = 64,
    lr: float = 0.1,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    loss: str = "cross_entropy",
    eval_every: int = 50,
    seed: int = 0,
    device: str | torch.device = "cpu",
    monitor: Monitor | dict | bool | None = None,
    progress: bool | None = None,
) -> FitResult:
    """Train ``model`` for ``steps`` mini-batch steps; return a :class:`FitResult`.

    Args:
        model: the ``nn.Module`` to train, in place.
        data: a :class:`~helpers.data.Dataset`, or an ``(x, y)`` pair (no test split).
        steps: optimizer steps to take (stops early if the loss becomes NaN or infinite).
        batch_size: examples per step, sampled by a seeded shuffle each epoch;
            ``None`` trains on the whole training split every step (full batch).
        lr: learning rate.
        optimizer: ``"sgd"`` or ``"adam"``.
        momentum: SGD's momentum (0: plain SGD).
        amsgrad: Adam's AMSGrad variant (Reddi et al. 2018).
        weight_decay: L2 penalty coefficient, passed to the optimizer.
        clip_norm: clip the total gradient norm to this (``clip_grad_norm_``).
        clip_value: clip each gradient entry to ``[-clip_value, clip_value]``.
        loss: ``"cross_entropy"`` (labels) or ``"mse"`` (float targets).
        eval_every: evaluate on the test split every this many steps (and at the end).
        seed: seeds shuffling and any randomness inside the model (dropout, RReLU).
        device: where to train; the data are moved there batch by batch.
        monitor: a :class:`~helpers.monitor.Monitor`, ``True`` for default settings, or a
            dict of its keyword arguments; attached for the run, returned in the result.
        progress: show a tqdm bar; ``None`` means yes, except while building the book.

    >>> from helpers.data import make_blobs
    >>> from helpers.models import mlp
    >>> result = fit(mlp(2, 4, depth=2, width=16), make_blobs(200), steps=20, progress=False)
    >>> result.status
    'ok'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_int("steps", steps, minimum=1)
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    check_number("lr", lr, minimum=0.0, strict=True)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_number("momentum", momentum, minimum=0.0, maximum=1.0)
    check_number("weight_decay", weight_decay, minimum=0.0)
    if clip_norm is not None:
        check_number("clip_norm", clip_norm, minimum=0.0, strict=True)
    if clip_value is not None:
        check_number("clip_value", clip_value, minimum=0.0, strict=True)
    check_choice("loss", loss, LOSSES)
    check_int("eval_every", eval_every, minimum=1)
    x_train, y_train, x_test, y_test = _as_split(data)
    if len(x_train) != len(y_train):
        raise ValueError(f"x has {len(x_train)} examples but y has {len(y_train)}")
    device = torch.device(device)
    generator = seed_everything(seed)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, amsgrad=amsgrad)
    loss_fn = nn.functional.cross_entropy if loss == "cross_entropy" else nn.functional.mse_loss
    if monitor is True:
        monitor = Monitor(model)
    elif isinstance(monitor, dict):
        monitor = Monitor(model, **monitor)
    elif monitor is not None and not isinstance(monitor, Monitor):
        raise TypeError(f"monitor must be a Monitor, True, a dict of Monitor arguments or None, got {monitor!r}")

    rows: list[tuple] = []
    n = len(x_train)
    order = torch.randperm(n, generator=generator)
    cursor, status, diverged_step, step = 0, "ok", None, 0
    show = (not building_book()) if progress is None else bool(progress)
    bar = tqdm(total=steps, disable=not show, desc="fit", leave=False)

    def record_eval(at: int) -> None:
        splits = [("train", x_train, y_train)] + ([("test", x_test, y_test)] if x_test is not None else [])
        for split, x, y in splits:
            rows.extend((at, split, k, v) for k, v in evaluate(model, x.to(device), y.to(device), loss).items())

    model.train()
    if monitor is not None:
        monitor.__enter__()
    try:
        record_eval(0)
        for step in range(1, steps + 1):
            if batch_size is None or batch_size >= n:
                xb, yb = x_train, y_train
            else:
                if cursor + batch_size > n:
                    order, cursor = torch.randperm(n, generator=generator), 0
                idx = order[cursor : cursor + batch_size]
                cursor += batch_size
                xb, yb = x_train[idx], y_train[idx]
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad(set_to_none=True)
            batch_loss = loss_fn(model(xb), yb)
            value = float(batch_loss.detach())
            rows.append((step, "train", "loss", value))
            if not math.isfinite(value):
                status, diverged_step = "diverged", step
                break
            batch_loss.backward()
            grads = [p.grad for p in params if p.grad is not None]
            grad_norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))) if grads else 0.0
            grad_abs_sum = float(sum(g.abs().sum() for g in grads)) if grads else 0.0
            rows.append((step, "train", "grad_norm", grad_norm))
            rows.append((step, "train", "grad_abs_sum", grad_abs_sum))
            if clip_value is not None:
                nn.utils.clip_grad_value_(params, clip_value)
            if clip_norm is not None:
                nn.utils.clip_grad_norm_(params, clip_norm)
            opt.step()
            if step % eval_every == 0 or step == steps:
                record_eval(step)
            bar.update(1)
    finally:
        bar.close()
        if monitor is not None:
            monitor.__exit__(None, None, None)  # also records the last update ratio
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return FitResult(history, status, diverged_step, step if status == "ok" else diverged_step, model, monitor)
