"""Seeding, so that the same seed gives the same numbers on the same machine.

Used by every chapter (through :func:`helpers.train.fit`) and by the experiments
that build nets outside ``fit``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from ._checks import check_int


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators; return a torch generator.

    The returned :class:`torch.Generator` is seeded with the same value, for code that
    wants a private stream (data shuffling in :func:`helpers.train.fit`).

    >>> g = seed_everything(0)
    >>> a = torch.randn(3)
    >>> _ = seed_everything(0)
    >>> bool(torch.equal(a, torch.randn(3)))
    True
    """
    check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- legacy global state, used by older code
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global (CPU) generator seeded to ``seed``, then restore it.

    For experiment helpers that build one net per seed: what they draw is reproducible, and the
    caller's random stream is left where it was.

    >>> before = torch.get_rng_state()
    >>> with seeded(3):
    ...     a = torch.randn(2)
    >>> with seeded(3):
    ...     b = torch.randn(2)
    >>> bool(torch.equal(a, b)), bool(torch.equal(before, torch.get_rng_state()))
    (True, True)
    """
    check_int("seed", seed, minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
