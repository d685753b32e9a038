r"""Born dead: ReLU nets that are dead at initialization, in the dead-ReLU chapter.

A ReLU net is *born dead* when some layer outputs 0 for every input (Lu et al. 2019). Without
biases and with positive inputs, :math:`P(\text{dead}) = 1 - (1 - 2^{-N})^L` for width :math:`N` and
depth :math:`L` (:func:`helpers.dying.born_dead_closed`); :func:`helpers.dying.born_dead` simulates
it. This module tabulates both and says what they show:

- :func:`table` — simulation and closed form by width and depth;
- :func:`by_bias`, :func:`bias_sentence` — what symmetric and positive biases change;
- :func:`width_check`, :func:`width_sentence` — exercise 2, the width a deep net needs.

>>> w = width_check(depth=5, risk=0.1, fewer=1, trials=200)
>>> w.need, dying.born_dead_closed(w.need, 5) < 0.1 <= dying.born_dead_closed(w.need - 1, 5)
(6, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from pandas.io.formats.style import Styler

from . import dying
from ._checks import check_int, check_number
from .text import superscript


def table(widths: Sequence[int], depth: int) -> pd.DataFrame:
    """P(dead at init) of bias-free ReLU nets for every width and every depth up to ``depth``:
    :func:`~helpers.dying.born_dead` (simulated) and :func:`~helpers.dying.born_dead_closed`."""
    check_int("depth", depth, minimum=1)
    return pd.DataFrame([{"width": n, "depth": L + 1, "simulated": p, "closed form": dying.born_dead_closed(n, L + 1)}
                         for n in widths for L, p in enumerate(dying.born_dead(n, depth))])


def by_bias(width: int, depth: int, kinds: Mapping[str, str]) -> pd.DataFrame:
    """Simulated P(dead at init) by depth (the index, 1 to ``depth``), a column per bias kind
    (label → ``none``, ``symmetric`` or ``positive``, as :func:`~helpers.dying.born_dead` takes)."""
    check_int("depth", depth, minimum=1)
    return pd.DataFrame({name: dying.born_dead(width, depth, bias=kind) for name, kind in kinds.items()},
                        index=pd.RangeIndex(1, depth + 1, name="depth"))


def bias_sentence(at: pd.DataFrame, depth: int, shallow: int = 10) -> str:
    """The columns of :func:`by_bias` (no bias, symmetric, positive, in that order) at
    depths ``shallow`` and ``depth``, and how much lower the biases make the risk."""
    none_, sym, pos = (at[c] for c in at.columns)
    return (
        f"P(dead at init) at depth {shallow}: {none_[shallow]:.2f} without biases, {sym[shallow]:.2f} with "
        f"symmetric biases ({1 - sym[shallow] / none_[shallow]:.0%} lower), {pos[shallow]:.2f} with positive "
        f"biases ({1 - pos[shallow] / none_[shallow]:.0%} lower). At depth {depth}: {none_[depth]:.2f}, "
        f"{sym[depth]:.2f} ({1 - sym[depth] / none_[depth]:.0%} lower) and {pos[depth]:.2f} "
        f"({1 - pos[depth] / none_[depth]:.0%} lower).")



@dataclass
class WidthCheck:
    """Exercise 2: the smallest width ``need`` with P(dead at init) below the risk (closed form),
    and a simulation at ``need`` and at ``need − fewer``."""

    need: int
    depth: int
    risk: float
    table: pd.DataFrame

    def style(self) -> Styler:
        """The table as the chapter shows it: four decimals, the smallest width in the caption."""
        return (self.table.style.hide(axis="index")
                .format("{:.4f}", subset=pd.IndexSlice[:, "P(dead at init), closed form":])
                .set_caption(f"Bias-free ReLU nets with {self.depth} hidden layers; smallest width with "
                             f"P(dead) < {100 * self.risk:g} %: {self.need}"))

    @property
    def simulated(self) -> pd.Series:
        """Simulated P(dead at init) by width."""
        return self.table.set_index("width").filter(like="simulated").iloc[:, 0]


def width_check(depth: int = 50, risk: float = 0.01, fewer: int = 3, trials: int = 5000) -> WidthCheck:
    """:class:`WidthCheck` for bias-free ReLU nets of ``depth`` hidden layers."""
    check_number("risk", risk, minimum=0.0, maximum=1.0, strict=True)
    check_int("depth", depth, minimum=1)
    need = next(n for n in range(1, 64) if dying.born_dead_closed(n, depth) < risk)
    widths = (need, need - check_int("fewer", fewer, minimum=1))
    return WidthCheck(need, depth, risk, pd.DataFrame([
        {"width": n, "P(dead at init), closed form": dying.born_dead_closed(n, depth),
         f"P(dead at init), simulated ({trials:,} nets)": dying.born_dead(n, depth, trials=trials, points=1)[-1]}
        for n in widths]))


def width_sentence(w: WidthCheck) -> str:
    """Exercise 2's answer: the width from (1 − 2⁻ᴺ)ᴸ ≥ 1 − risk, for the depth L and risk of ``w``."""
    threshold = 1 - (1 - w.risk) ** (1 / w.depth)
    depth, alive = str(w.depth), f"{1 - w.risk:g}"
    return (f"**Answer.** Width {w.need}. (1 − 2⁻ᴺ){superscript(w.depth)} ≥ {alive} needs "
            f"2⁻ᴺ ≤ 1 − {alive}^(1/{depth}) ≈ {threshold:.1e}, "
            f"that is N ≥ {-math.log2(threshold):.1f}; the simulation agrees (table above). The width "
            "needed grows only like log₂(depth / risk), which is why the wide nets of practice never meet "
            "this problem.")
