"""What the helpers accept as data, turned into batches: the one place inputs are coerced.

- :func:`as_split` — the training (and test) split :func:`helpers.train.fit` trains on: a
  :class:`helpers.data.Dataset` or an ``(x, y)`` pair of tensors;
- :func:`as_batches` — the batches :func:`helpers.health.report` diagnoses a model on, from what a
  practitioner holds: a tensor (or NumPy array) with or without ``target``; an ``(x, y)`` pair;
  a multi-input batch ``((x1, x2), y)``; a dict of tensors (a tokenizer's output; its
  ``"labels"`` go to the model, which computes its own loss); a ``torch.utils.data.Dataset``;
  a ``DataLoader`` (its first batches); a :class:`helpers.data.Dataset`.

A :class:`Batch` holds the model's positional and keyword arguments and the target. What a
guess would decide (a 1-D tensor: many scalars or one example?) is refused with a message
that says what to pass.

>>> x, y = torch.randn(10, 3), torch.arange(10)
>>> [len(b) for b in as_batches((x, y), n_batches=2, batch_size=4)]
[4, 4]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate
from torch.utils.data import Dataset as TorchDataset

from .data import Dataset

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]
ACCEPTED = ("a tensor or NumPy array (with target=), an (x, y) pair, a ((x1, x2), y) multi-input batch, "
            "a dict of tensors (e.g. a tokenizer's output), a torch Dataset, a DataLoader, or a helpers.data.Dataset")


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


@dataclass
class Batch:
    """One batch: the model is called as ``model(*args, **kwargs)``; ``target`` goes to the loss."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    target: torch.Tensor | None = None

    def __len__(self) -> int:
        first = next(iter([*self.args, *self.kwargs.values()]), None)
        return int(first.shape[0]) if isinstance(first, torch.Tensor) and first.ndim else 1

    def to(self, device: torch.device) -> Batch:
        move = lambda v: v.to(device) if isinstance(v, torch.Tensor) else v  # noqa: E731
        return Batch(tuple(move(a) for a in self.args), {k: move(v) for k, v in self.kwargs.items()},
                     move(self.target))

    def tensors(self) -> list[torch.Tensor]:
        """The floating-point inputs (the ones whose scale matters)."""
        return [t for t in (*self.args, *self.kwargs.values()) if isinstance(t, torch.Tensor) and t.is_floating_point()]


def _tensor(value: Any, name: str) -> Any:
    if isinstance(value, np.ndarray):
        t = torch.from_numpy(value)
        return t.float() if t.dtype == torch.float64 else t  # models are float32; NumPy defaults to float64
    return value


def _inputs(x: Any, name: str = "data") -> tuple[tuple, dict]:
    """Positional and keyword inputs from x: a tensor, a tuple of tensors, or a dict."""
    x = _tensor(x, name)
    if isinstance(x, torch.Tensor):
        if x.ndim < 2 and x.is_floating_point():
            raise ValueError(f"{name} is a 1-D tensor of shape {tuple(x.shape)}: the report reads the first axis as "
                             "the batch; pass x[None] for one example, or x[:, None] for a batch of scalars")
        return (x,), {}
    if isinstance(x, dict):
        return (), {k: _tensor(v, f"{name}[{k!r}]") for k, v in x.items()}
    if isinstance(x, (tuple, list)) and x and all(isinstance(_tensor(t, name), torch.Tensor) for t in x):
        return tuple(_tensor(t, name) for t in x), {}
    raise TypeError(f"{name} must be {ACCEPTED}; got {type(x).__name__}")


def _from_item(item: Any) -> Batch:
    """A Batch from what a Dataset or DataLoader yields: (x, y), (x1, x2, y), a dict or a tensor."""
    if isinstance(item, dict):
        kwargs = dict(item)
        return Batch((), kwargs, None)  # "labels" stay among the inputs: the model computes its own loss
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        args, kwargs = _inputs(item[0] if len(item) == 2 else tuple(item[:-1]))
        return Batch(args, kwargs, _tensor(item[-1], "target"))
    args, kwargs = _inputs(item)
    return Batch(args, kwargs, None)


def _take(batch: Batch, index: torch.Tensor) -> Batch:
    n = len(batch)
    pick = lambda v: v[index] if isinstance(v, torch.Tensor) and v.ndim and v.shape[0] == n else v  # noqa: E731
    return Batch(tuple(pick(a) for a in batch.args), {k: pick(v) for k, v in batch.kwargs.items()},
                 pick(batch.target))


def _whole(data, target) -> Batch | None:
    """The whole of ``data`` as one Batch, for in-memory data; None for a Dataset or DataLoader."""
    if isinstance(data, (DataLoader, TorchDataset)) and not isinstance(data, Dataset):
        if target is not None:
            raise ValueError(f"target must be None when data is a {type(data).__name__} (its items hold the targets)")
        return None
    if isinstance(data, Dataset):
        if target is not None:
            raise ValueError("target must be None when data is a Dataset (its y_train is used)")
        return Batch((data.x_train,), {}, data.y_train)
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[1], (tuple, list, dict)):
        if target is not None:
            raise ValueError("target must be None when data is an (x, y) pair")
        args, kwargs = _inputs(data[0], "data[0]")
        return Batch(args, kwargs, _tensor(data[1], "data[1]"))
    if isinstance(data, (tuple, list)):
        raise TypeError(f"data given as a {type(data).__name__} must be an (x, y) pair: x a tensor, a tuple of "
                        f"tensors or a dict, y a tensor; got {len(data)} items")
    args, kwargs = _inputs(data)
    if target is not None and not isinstance(_tensor(target, "target"), torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor or None, got {type(target).__name__}")
    return Batch(args, kwargs, _tensor(target, "target"))


def as_batches(data, target=None, *, n_batches: int = 2, batch_size: int = 256, seed: int = 0) -> list[Batch]:
    """At most ``n_batches`` batches of ``batch_size`` examples: a seeded random subset of in-memory
    data or of a Dataset's items, or a DataLoader's first ``n_batches`` batches as it yields them."""
    if isinstance(data, DataLoader):
        if target is not None:
            raise ValueError("target must be None when data is a DataLoader (its batches hold the targets)")
        batches = [_from_item(b) for b, _ in zip(data, range(n_batches))]
        if not batches:
            raise ValueError("the DataLoader yielded no batch")
        return batches
    generator = torch.Generator().manual_seed(seed)
    if isinstance(data, TorchDataset) and not isinstance(data, Dataset):
        if target is not None:
            raise ValueError("target must be None when data is a torch Dataset (its items hold the targets)")
        n = min(len(data), n_batches * batch_size)
        index = torch.randperm(len(data), generator=generator)[:n].tolist()
        return [_from_item(default_collate([data[i] for i in index[s:s + batch_size]]))
                for s in range(0, n, batch_size)]
    whole = _whole(data, target)
    n_all = len(whole)
    if n_all == 0:
        raise ValueError("data has no examples")
    if whole.target is not None and whole.target.ndim and len(whole.target) != n_all:
        raise ValueError(f"data has {n_all} examples but the targets have {len(whole.target)}")
    n = min(n_all, n_batches * batch_size)
    index = torch.randperm(n_all, generator=generator)[:n] if n < n_all else torch.arange(n_all)
    return [_take(whole, i) for i in index.split(batch_size)]
