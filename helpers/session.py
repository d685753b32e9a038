"""One call that prepares a notebook session: :func:`setup`.

Importing ``helpers`` changes nothing; every chapter starts with ``helpers.setup()``.
"""

from __future__ import annotations

import torch

from ._checks import check_int
from .plots import set_theme
from .seed import seed_everything


def setup(*, threads: int = 1, seed: int | None = None, theme: bool = True) -> str:
    """Set torch's CPU threads, the book's plot theme and (optionally) every global seed.

    One thread: the book's nets are tiny, so more threads only add overhead, and on a busy
    machine (the book builds its chapters in parallel) they fight each other. Returns a
    one-line description of the session (helpers and torch versions, threads).

    >>> setup(theme=False).startswith("helpers ")
    True
    """
    from . import __version__

    torch.set_num_threads(check_int("threads", threads, minimum=1))
    if theme:
        set_theme()
    if seed is not None:
        seed_everything(seed)
    return f"helpers {__version__} | torch {torch.__version__} | {threads} thread(s)"
