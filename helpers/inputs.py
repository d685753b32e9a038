"""What the helpers accept as data, turned into tensors: the one place inputs are coerced.

- :func:`as_split` — the training (and test) split :func:`helpers.train.fit` trains on;
- :func:`as_batches` — the seeded batches :func:`helpers.health.report` diagnoses a model on.

Both take a :class:`helpers.data.Dataset` or an ``(x, y)`` pair of tensors and raise a
``TypeError``/``ValueError`` that says what to pass otherwise.

>>> x, y = torch.randn(10, 3), torch.arange(10)
>>> [len(xb) for xb, _ in as_batches((x, y), n_batches=2, batch_size=4)]
[4, 4]
"""

from __future__ import annotations

import torch

from .data import Dataset

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]


def _is_pair(data) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)


def as_split(data) -> Split:
    """``(x_train, y_train, x_test, y_test)`` from a Dataset, or ``(x, y, None, None)`` from a pair."""
    if isinstance(data, Dataset):
        x, y, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    elif _is_pair(data):
        (x, y), x_test, y_test = data, None, None
    else:
        raise TypeError(f"data must be a helpers.data.Dataset or an (x, y) pair of tensors, got {type(data).__name__}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    return x, y, x_test, y_test


def _as_xy(data, target) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(data, Dataset) or isinstance(data, (tuple, list)):
        if isinstance(data, (tuple, list)) and not _is_pair(data):
            raise TypeError(f"data given as a {type(data).__name__} must be an (x, y) pair of tensors")
        if target is not None:
            given = "a Dataset (its y_train is used)" if isinstance(data, Dataset) else "an (x, y) pair"
            raise ValueError(f"target must be None when data is {given}")
        return as_split(data)[:2]
    if isinstance(data, torch.Tensor):
        if target is not None and not isinstance(target, torch.Tensor):
            raise TypeError(f"target must be a torch.Tensor or None, got {type(target).__name__}")
        return data, target
    raise TypeError("data must be a torch.Tensor batch, an (x, y) pair of tensors or a helpers.data.Dataset, "
                    f"got {type(data).__name__}")


def as_batches(data, target: torch.Tensor | None = None, *, n_batches: int = 2, batch_size: int = 256,
               seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """At most ``n_batches`` batches of ``batch_size`` examples, a seeded random subset of ``data``."""
    x, y = _as_xy(data, target)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"data has no examples (shape {tuple(x.shape)})")
    if y is not None and len(y) != len(x):
        raise ValueError(f"data has {len(x)} examples but the targets have {len(y)}")
    n = min(len(x), n_batches * batch_size)
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(x), generator=generator)[:n] if n < len(x) else torch.arange(len(x))
    return [(x[i], None if y is None else y[i]) for i in index.split(batch_size)]
