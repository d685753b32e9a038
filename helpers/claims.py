"""The claims ledger: every claim a chapter states is checked here, with its margin.

A chapter states a claim only after an experiment measured it, and the cell that measured
it checks it through a :class:`Ledger`. The ledger records the chapter, a short statement,
the measured value(s), the threshold and the **margin**, and raises ``AssertionError`` with a
message naming the claim, the value and the threshold when the claim does not hold. The book
build collects every chapter's ledger into one reference page (``reference/claims``).

The margin says how far the measurement is from failing the claim:

- a bound (``above=t`` or ``below=t``): the worst value's distance to ``t`` as a fraction of
  ``|t|``, so ``margin = (min(v) − t)/|t|`` for ``above`` and ``(t − max(v))/|t|`` for ``below``.
  A margin of 0.5 means the value may move by half the threshold before the claim fails.
  With ``t = 0`` the distance itself is the margin.
- a count ("at least k of n runs"): ``margin = (count − k)/n``, the share of runs to spare.
- an exact claim (a list of grid cells, a status): no margin; it holds or it does not.

Claims about chaotic runs (large learning rates, divergence, nets at the edge of dying) are
stated over seeds, as medians or counts, so that a one-ulp difference on another CPU does not
turn them over; see the chapter on float paths in ``reference/claims``.

Where the ledger is written: when the environment variable ``TRAINABILITY_CLAIMS_DIR`` is set
(``make book`` and ``make variants`` set it), each chapter's ledger is written to
``<dir>/<chapter>.json`` after every check. With ``TRAINABILITY_CLAIMS_SOFT=1`` (only the
float-variant run sets it) a failing claim is recorded and reported on stderr instead of
raised, so that one run lists every claim that fails, not only the first.

Used by every chapter.

>>> claims = Ledger("demo", directory=None)
>>> claims.check("the loss falls below chance", 0.8, below=2.3)
>>> claims.check("every seed trains", [0.95, 0.97, 0.93], above=0.9)
>>> claims.at_least("clipped runs that end below 1e-3", [True, True, False], k=2)
>>> print(claims.frame()[["statement", "threshold", "margin"]].round(3).to_string(index=False))
                       statement threshold  margin
     the loss falls below chance     < 2.3   0.652
               every seed trains     > 0.9   0.033
clipped runs that end below 1e-3  ≥ 2 of 3   0.000
>>> claims.check("a value that is too small", 0.5, above=0.9)
Traceback (most recent call last):
...
AssertionError: claim failed [demo] a value that is too small: measured 0.5, needs > 0.9
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .text import number

DIR_ENV = "TRAINABILITY_CLAIMS_DIR"
SOFT_ENV = "TRAINABILITY_CLAIMS_SOFT"
KINDS = ("bound", "count", "exact")


def _values(name: str, value: Any) -> list[float]:
    """``value`` (a number, a sequence, a Series or array) as a flat list of floats."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number or numbers, got {value!r} of type {type(value).__name__}")
    array = np.asarray(value.to_numpy() if isinstance(value, (pd.Series, pd.DataFrame)) else value, dtype=float)
    values = array.ravel().tolist()
    if not values:
        raise ValueError(f"{name} is empty: a claim needs at least one measured value")
    return values


def _shown(values: list[float]) -> str:
    if len(values) == 1:
        return number(values[0], 4)
    return "[" + ", ".join(number(v, 4) for v in values) + "]"


def bound_margin(values: Iterable[float], above: float | None = None, below: float | None = None) -> float:
    """The margin of ``values`` against the bounds, as a fraction of the threshold (see the module).

    Every value must be finite and on the right side of each bound for a positive margin; a NaN
    gives ``-inf`` (the claim fails). With both bounds, the smaller margin counts.

    >>> round(bound_margin([0.95, 0.93], above=0.9), 4), round(bound_margin([1e-8], below=1e-6), 4)
    (0.0333, 0.99)
    >>> round(bound_margin([0.5], above=0.4, below=0.75), 4)
    0.25
    """
    values = list(values)
    if any(math.isnan(v) for v in values):
        return -math.inf
    margins = []
    if above is not None:
        low = min(values)
        margins.append((low - above) / abs(above) if above != 0 else low - above)
    if below is not None:
        high = max(values)
        margins.append((below - high) / abs(below) if below != 0 else below - high)
    margin = min(margins)
    return margin if not math.isnan(margin) else -math.inf


class Ledger:
    """The claims of one chapter: check each, record it, write the chapter's ledger file.

    Args:
        chapter: the chapter's file name without extension, e.g. ``"01_vanishing_exploding"``.
        directory: where ``<chapter>.json`` goes; by default ``$TRAINABILITY_CLAIMS_DIR``, and
            nowhere when that is unset (a reader's kernel). Creating a ledger starts the
            chapter's file afresh.

    Checking a statement a second time (a cell run again in Jupyter) replaces its entry.
    """

    def __init__(self, chapter: str, directory: str | os.PathLike | None = "env") -> None:
        if not isinstance(chapter, str) or not chapter.strip():
            raise ValueError(f"chapter={chapter!r} is not valid; give the chapter's file name, "
                             "e.g. '01_vanishing_exploding'")
        self.chapter = chapter
        if directory == "env":
            directory = os.environ.get(DIR_ENV) or None
        self.path = Path(directory) / f"{chapter}.json" if directory else None
        self.entries: dict[str, dict] = {}
        self._write()

    # -- the three kinds of claim -------------------------------------------------------------
    def check(self, statement: str, value: Any, *, above: float | None = None, below: float | None = None) -> None:
        """Claim that every measured value lies above ``above`` and/or below ``below``.

        ``value`` is one number or several (one per seed, say): all of them must hold, so
        the margin is the worst one's. To claim a median or a mean, pass the median or mean.
        A NaN always fails.

        >>> Ledger("demo", directory=None).check("ratio over 100", [150.0, 400.0], above=100)
        """
        values = _values("value", value)
        if above is None and below is None:
            raise ValueError("check() needs a bound: give above=..., below=... or both")
        for name, bound in (("above", above), ("below", below)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float, np.number))
                                      or not math.isfinite(float(bound))):
                raise TypeError(f"{name} must be a finite number, got {bound!r}")
        above = None if above is None else float(above)
        below = None if below is None else float(below)
        if above is not None and below is not None and above >= below:
            raise ValueError(f"above={above!r} must be smaller than below={below!r}")
        parts = ([f"> {above:g}"] if above is not None else []) + ([f"< {below:g}"] if below is not None else [])
        margin = bound_margin(values, above, below)
        self._record(statement, "bound", values, " and ".join(parts), margin, margin > 0)

    def at_least(self, statement: str, holds: Any, k: int) -> None:
        """Claim that at least ``k`` of the runs satisfy a condition (``holds``: one bool per run).

        >>> Ledger("demo", directory=None).at_least("seeds that diverge", [True, True, False], k=2)
        """
        flags = np.asarray(holds.to_numpy() if isinstance(holds, pd.Series) else holds).ravel()
        if flags.size == 0 or flags.dtype != bool:
            raise TypeError(f"holds must be a non-empty sequence of bools (one per run), got {holds!r}")
        n = int(flags.size)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
            raise ValueError(f"k={k!r} is not valid; it must be an int from 1 to the number of runs, {n}")
        count = int(flags.sum())
        self._record(statement, "count", [float(count)], f"≥ {k} of {n}", (count - k) / n, count >= k)

    def exact(self, statement: str, value: Any, expected: Any) -> None:
        """Claim that a measured outcome equals ``expected`` exactly (a list, a label, a bool).

        >>> Ledger("demo", directory=None).exact("learning rates that train", [0.1, 0.3], [0.1, 0.3])
        """
        holds = bool(value == expected) if not isinstance(value, (np.ndarray, pd.Series)) else \
            bool(np.array_equal(np.asarray(value), np.asarray(expected)))
        self._record(statement, "exact", [str(value)], f"= {expected}", None, holds)

    # -- the record -----------------------------------------------------------------------------
    def _record(self, statement: str, kind: str, values: list, threshold: str, margin: float | None,
                holds: bool) -> None:
        if not isinstance(statement, str) or not statement.strip():
            raise ValueError(f"statement={statement!r} is not valid; say in a few words what is claimed")
        self.entries[statement] = {
            "chapter": self.chapter, "statement": statement, "kind": kind, "values": values,
            "threshold": threshold, "margin": None if margin is None else float(margin), "holds": bool(holds)}
        self._write()
        if holds:
            return
        if kind == "exact":
            needed = f"expected {threshold[2:]}"
        else:
            needed = f"needs {threshold}"
        shown = values[0] if kind == "exact" else _shown(values)
        message = f"claim failed [{self.chapter}] {statement}: measured {shown}, {needed}"
        if os.environ.get(SOFT_ENV, "").strip() in ("1", "true", "yes"):
            print(message, file=sys.stderr)
            return
        raise AssertionError(message)

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ledger = {"chapter": self.chapter, "machine": machine(), "claims": list(self.entries.values())}
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(ledger, indent=1, ensure_ascii=False))
        temporary.replace(self.path)

    def frame(self) -> pd.DataFrame:
        """The chapter's claims so far, one row each: statement, kind, values, threshold, margin, holds."""
        return to_frame(list(self.entries.values()))


def to_frame(entries: list[dict]) -> pd.DataFrame:
    """Ledger entries (as written to the JSON files) as a tidy DataFrame, one row per claim."""
    columns = ["chapter", "statement", "kind", "values", "threshold", "margin", "holds"]
    frame = pd.DataFrame(entries, columns=columns)
    frame["margin"] = frame["margin"].astype(float)
    return frame


def read(directory: str | os.PathLike) -> pd.DataFrame:
    """Every chapter's ledger in ``directory`` (the ``*.json`` files), as one DataFrame."""
    entries = []
    for path in sorted(Path(directory).glob("*.json")):
        entries.extend(json.loads(path.read_text())["claims"])
    return to_frame(entries)


def machine() -> dict[str, str]:
    """What a measurement ran on: the CPU, the kernel path, the float-path settings, torch's version."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    settings = {key: os.environ[key] for key in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")
                if os.environ.get(key)}
    return {"cpu": cpu, "kernels": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "settings": " ".join(f"{k}={v}" for k, v in settings.items()) or "native"}
