r"""The normalization chapter's grids of runs: one call per experiment, settings × seeds.

Each function trains (or looks up, where the runs are memoized) every setting of one experiment
and returns the runs keyed by setting, or a tidy frame of what the chapter reads from them:

- :func:`damper_runs` — the debugging diary's fixed batch, ReLU and leaky ReLU, without and with
  BatchNorm, over seeds;
- :func:`sweep_runs` — the learning rate × init scale map, without and with BatchNorm;
- :func:`forgotten_eval` — accuracy with a forgotten ``model.eval()``, by evaluation batch;
- :func:`error_by_workers`, :func:`seed_errors`, :func:`late_loss`, :func:`late_losses` — the
  four-stage CNN by images per worker (from a :class:`~helpers.normalization.CNNRuns`).

>>> from helpers.data import make_blobs
>>> blobs = make_blobs(64, n_features=4)
>>> runs = damper_runs((blobs.x_train, blobs.y_train), {None: [0], "batch": [0]}, steps=2)
>>> sorted(runs, key=str)[:2]
[('leaky_relu', 'batch', 0), ('leaky_relu', None, 0)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from . import train
from ._checks import check_int, check_number
from .normalization import accuracy_in_train_mode, fixed_batch_run


def damper_runs(data, seeds: Mapping[str | None, Sequence[int]], lr: float = 1.0,
                activations: Sequence[str] = ("relu", "leaky_relu"),
                steps: int = 150) -> dict[tuple, train.FitResult]:
    """:func:`~helpers.normalization.fixed_batch_run` on ``data`` for every activation, norm
    (the keys of ``seeds``: ``None`` and ``"batch"``) and seed of that norm, keyed
    ``(activation, norm, seed)``."""
    check_number("lr", lr, minimum=0.0, strict=True)
    return {(act, norm, seed): fixed_batch_run(data, act, norm, lr=lr, seed=seed, steps=check_int("steps", steps, 1))
            for act in activations for norm in seeds for seed in seeds[norm]}


def sweep_runs(data, lrs: Sequence[float], scales: Sequence[float], steps: int = 60,
               activation: str = "relu") -> dict[tuple, train.FitResult]:
    """:func:`~helpers.normalization.fixed_batch_run` (seed 0) for every BatchNorm setting, init
    scale and learning rate, keyed ``(batchnorm, scale, lr)`` as
    :func:`~helpers.normalization.sweep_grid` expects."""
    check_int("steps", steps, minimum=1)
    return {(bn, scale, lr): fixed_batch_run(data, activation, "batch" if bn else None, lr, scale=scale, steps=steps)
            for bn in [False, True] for scale in scales for lr in lrs}


def error_by_workers(runs: Callable, norms: Mapping[str, str | None], per_worker: Sequence[int],
                     channels: Sequence[int], seed: int = 0) -> pd.DataFrame:
    """Test error of ``runs(norm, per_worker=n, channels=channels, seed=seed)`` (a
    :class:`~helpers.normalization.CNNRuns`) for every label → norm of ``norms`` and every ``n``:
    columns normalization, per worker, test error."""
    for n in per_worker:
        check_int("per_worker", n, minimum=1)
    return pd.DataFrame([{"normalization": label, "per worker": n,
                          "test error": 1 - runs(norm, per_worker=n, channels=channels, seed=seed).final()}
                         for label, norm in norms.items() for n in per_worker])


def seed_errors(runs: Callable, seeds: Sequence[int], channels: Sequence[int], per_worker: int = 2) -> pd.DataFrame:
    """Test error per seed (the index) of BatchNorm at ``per_worker`` images per worker and of
    GroupNorm, from ``runs`` (a :class:`~helpers.normalization.CNNRuns`)."""
    check_int("per_worker", per_worker, minimum=1)
    bn = [1 - runs("batch", per_worker=per_worker, channels=channels, seed=s).final() for s in seeds]
    gn = [1 - runs("group", channels=channels, seed=s).final() for s in seeds]
    return pd.DataFrame({f"BatchNorm, {per_worker} per worker": bn, "GroupNorm": gn},
                        index=pd.Index(list(seeds), name="seed"))


def late_loss(result: train.FitResult, last: int = 30) -> float:
    """Mean training loss over the ``last`` logged steps of ``result``."""
    return float(result.curve("loss").value.tail(check_int("last", last, minimum=1)).mean())


def forgotten_eval(model, x, y, batch_sizes: Sequence[int], seed: int = 0) -> pd.DataFrame:
    """:func:`~helpers.normalization.accuracy_in_train_mode` of ``model`` on ``(x, y)`` for each
    evaluation batch size: columns evaluation batch, accuracy."""
    return pd.DataFrame([{"evaluation batch": b,
                          "accuracy": accuracy_in_train_mode(model, x, y, batch_size=b, seed=seed)}
                         for b in batch_sizes])


def late_losses(runs: Callable, seeds: Mapping[int, Sequence[int]], channels: Sequence[int],
                last: int = 30) -> pd.Series:
    """:func:`late_loss` of ``runs("batch", per_worker=n, channels=channels, seed=s)`` for every
    ``n`` of ``seeds`` and each of its seeds ``s``, indexed by (per worker, seed)."""
    return pd.Series({(n, s): late_loss(runs("batch", per_worker=n, channels=channels, seed=s), last)
                      for n in seeds for s in seeds[n]}).rename_axis(["per worker", "seed"])
