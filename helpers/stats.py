r"""The book's statistics of one batch of activations: tensor in, numbers out.

The single definition of each quantity the monitor, the report and the chapters measure.
A *unit* is a feature (axis 1 of a ``(batch, features)`` output) or a channel (axis 1 of a
``(batch, channels, …)`` conv output); its values are every example's (and position's).

- :func:`per_unit` — the values of each unit, one row per unit;
- :func:`dead_units` — a unit is *dead* when it outputs exactly 0 for every example given
  (Lu et al. 2019, "Dying ReLU and initialization"): it passes no gradient either;
- :func:`frozen_units` — its output varies by less than ``tol`` across the examples;
- :func:`saturated` — outputs in the flat tails: :math:`|\tanh| > 0.97`, sigmoid outside
  :math:`[0.03, 0.97]` (the thresholds Glorot & Bengio 2010 count saturation with);
- :func:`example_std` — the spread across examples: the std of each live unit over the
  batch, averaged as :math:`\sqrt{\overline{\sigma_u^2}}`; near 0, the signal has *collapsed*;
- :func:`activation_stats` — the monitor's per-layer summary of one output;
- :func:`rms` and :func:`update_ratio` — :math:`\sqrt{\overline{x^2}}` and
  :math:`\lVert W_\text{after} - W_\text{before}\rVert / \lVert W_\text{before}\rVert`.

>>> out = torch.tensor([[0.0, 1.0, 2.0], [0.0, 3.0, 2.0]])
>>> dead_units(out).tolist(), frozen_units(out).tolist()
([True, False, False], [True, False, True])
"""

from __future__ import annotations

import torch
from torch import nn

TANH_SATURATION = 0.97
SIGMOID_SATURATION = (0.03, 0.97)
ACTIVATION_QUANTITIES = ("act_mean", "act_std", "frac_zero", "frac_saturated", "frac_dead")


def per_unit(out: torch.Tensor) -> torch.Tensor:
    """``out`` as ``(units, values)``: axis 1 first, everything else flattened.

    >>> per_unit(torch.zeros(8, 3, 5, 5)).shape
    torch.Size([3, 200])
    """
    if out.ndim < 2:
        raise ValueError(f"out must have a batch axis and a unit axis, got shape {tuple(out.shape)}")
    return out.detach().transpose(0, 1).reshape(out.shape[1], -1)


def dead_units(out: torch.Tensor) -> torch.Tensor:
    """Boolean per unit: exactly 0 for every example (and position) of ``out``."""
    return (per_unit(out) == 0).all(dim=1)


def frozen_units(out: torch.Tensor, tol: float = 1e-3) -> torch.Tensor:
    """Boolean per unit: its output varies by less than ``tol`` (max − min) over ``out``."""
    low, high = per_unit(out).aminmax(dim=1)
    return (high - low) < tol


def frac_dead(out: torch.Tensor) -> float:
    """Share of dead units of ``out`` (see :func:`dead_units`); NaN without a unit axis."""
    return float(dead_units(out).float().mean()) if out.ndim >= 2 else float("nan")


def saturated(module: nn.Module | str, out: torch.Tensor) -> torch.Tensor | None:
    """Boolean mask of outputs in the flat tails of a tanh or sigmoid, else None.

    ``module`` is the activation module or its name (``"tanh"``, ``"sigmoid"``).

    >>> saturated("tanh", torch.tensor([0.5, -0.99])).tolist()
    [False, True]
    """
    kind = module if isinstance(module, str) else type(module).__name__.lower()
    if kind == "tanh":
        return out.abs() > TANH_SATURATION
    if kind == "sigmoid":
        low, high = SIGMOID_SATURATION
        return (out < low) | (out > high)
    return None


def example_std(out: torch.Tensor) -> float:
    """Spread across examples: √(mean over live units of each unit's variance over the batch).

    >>> example_std(torch.tensor([[1.0, 0.0], [3.0, 0.0]]))  # unit 2 is dead
    1.0
    """
    values = per_unit(out).to(torch.float64)
    live = (values != 0).any(dim=1)
    if not live.any():
        return float("nan")
    var = values[live].var(dim=1, unbiased=False)
    return float(var.mean().sqrt())


def distributed() -> bool:
    """True inside a ``torch.distributed`` group of more than one process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def activation_stats(module: nn.Module, out: torch.Tensor, *, combine: bool = False) -> dict[str, float]:
    """The monitor's quantities of one output batch: ``ACTIVATION_QUANTITIES``.

    ``combine=True`` (inside a ``torch.distributed`` group) computes them over every rank's batch:
    sums are all-reduced, and a unit is dead only if it is dead on every rank.

    >>> activation_stats(nn.ReLU(), torch.tensor([[0.0, 1.0], [0.0, 3.0]]))["frac_dead"]
    0.5
    """
    out = out.detach()
    if out.dtype != torch.float32:
        out = out.float()
    if combine:
        return _combined_stats(module, out)
    mask = saturated(module, out)
    std, mean = torch.std_mean(out) if out.numel() > 1 else (out.new_zeros(()), out.mean())
    zero = out == 0
    if out.ndim == 2:
        dead = zero.all(dim=0)
    elif out.ndim > 2:
        dead = zero.transpose(0, 1).reshape(out.shape[1], -1).all(dim=1)
    values = [mean, std, zero.sum() / zero.numel()] + ([dead.sum() / dead.numel()] if out.ndim >= 2 else [])
    if mask is not None:
        values.append(mask.sum() / mask.numel())
    numbers = torch.stack([v.float() for v in values]).tolist()  # one conversion for all
    return {
        "act_mean": numbers[0],
        "act_std": numbers[1],
        "frac_zero": numbers[2],
        "frac_saturated": numbers[-1] if mask is not None else float("nan"),
        "frac_dead": numbers[3] if out.ndim >= 2 else float("nan"),
    }


def _combined_stats(module: nn.Module, out: torch.Tensor) -> dict[str, float]:
    """:func:`activation_stats` over every rank of a ``torch.distributed`` group (all-reduced sums)."""
    import torch.distributed as dist

    mask = saturated(module, out)
    sums = torch.stack([out.new_tensor(float(out.numel())), out.sum(), (out * out).sum(), (out == 0).sum().float(),
                        mask.sum().float() if mask is not None else out.new_zeros(())]).double()
    alive = (per_unit(out) != 0).any(dim=1).double() if out.ndim >= 2 else None
    dist.all_reduce(sums)
    if alive is not None:
        dist.all_reduce(alive)
    n, total, total_sq, zeros, sat = (float(v) for v in sums)
    mean = total / n
    return {
        "act_mean": mean,
        "act_std": max((total_sq - n * mean * mean) / (n - 1), 0.0) ** 0.5 if n > 1 else 0.0,
        "frac_zero": zeros / n,
        "frac_saturated": float("nan") if mask is None else sat / n,
        "frac_dead": float((alive == 0).double().mean()) if alive is not None else float("nan"),
    }


def rms(x: torch.Tensor) -> float:
    """Root mean square, √(mean x²).

    >>> rms(torch.tensor([3.0, -3.0]))
    3.0
    """
    return float(x.detach().double().pow(2).mean().sqrt())


def update_ratio(before: torch.Tensor, after: torch.Tensor) -> float:
    """‖after − before‖ / ‖before‖: the relative size of one update (Karpathy's ~1e-3 rule)."""
    return float((after - before).norm() / before.norm().clamp_min(1e-12))


class Moments:
    """Running sums over batches of one layer's outputs, for statistics over all of them.

    Per unit: whether it was ever non-zero, the sum and the sum of squares of its values
    (kept apart for each width a layer is called with); over all values: count, sum, sum of
    squares, zeros and saturated outputs. :meth:`summary` gives the report's quantities.

    >>> m = Moments()
    >>> m.add(nn.ReLU(), torch.tensor([[0.0, 1.0], [0.0, 3.0]]))
    >>> m.summary()["frac_dead"], m.summary()["example_std"]
    (0.5, 1.0)
    """

    def __init__(self) -> None:
        self.units: dict[int, list[torch.Tensor]] = {}  # width -> [alive, sum, sumsq, count]
        self.total = torch.zeros(5, dtype=torch.float64)  # count, sum, sumsq, zeros, saturated
        self.saturating = False

    def add(self, module: nn.Module | str, out: torch.Tensor) -> None:
        """Accumulate one output batch of ``module`` (or of the function named so), at least two axes."""
        values = per_unit(out).to(torch.float64)
        mask = saturated(module, values)
        self.saturating = mask is not None
        self.total = self.total.to(values.device)  # the sums stay on the layer's device (CUDA too)
        self.total += torch.stack([
            values.new_tensor(float(values.numel())), values.sum(), (values * values).sum(),
            (values == 0).sum().to(torch.float64), mask.sum().to(torch.float64) if mask is not None
            else values.new_zeros(())])
        new = [(values != 0).any(dim=1), values.sum(dim=1), (values * values).sum(dim=1),
               values.new_tensor(float(values.shape[1]))]
        old = self.units.get(values.shape[0])
        if old is None:
            self.units[values.shape[0]] = new
        else:
            self.units[values.shape[0]] = [old[0] | new[0]] + [a + b for a, b in zip(old[1:], new[1:])]

    def all_reduce(self) -> None:
        """Combine the sums of every process of a ``torch.distributed`` group, in place: counts and
        sums add up, and a unit is alive if it is alive on any rank (dead only if dead on all)."""
        import torch.distributed as dist

        dist.all_reduce(self.total)
        for width in sorted(self.units):
            alive, *sums = self.units[width]
            alive_count = alive.to(torch.float64)
            for t in (alive_count, *sums):
                dist.all_reduce(t)
            self.units[width] = [alive_count > 0, *sums]

    def summary(self) -> dict[str, float]:
        """act_mean, act_std, act_sq (the second moment E[a²]), frac_zero, frac_saturated (NaN if not
        tanh/sigmoid), frac_dead, example_std."""
        n, total, total_sq, zeros, sat = (float(v) for v in self.total)
        if not n:
            return dict.fromkeys(("act_mean", "act_std", "act_sq", "frac_zero", "frac_saturated", "frac_dead",
                                  "example_std"), float("nan"))
        alive = torch.cat([u[0] for u in self.units.values()])
        variances = [((u[2] / u[3]) - (u[1] / u[3]) ** 2).clamp_min(0.0)[u[0]] for u in self.units.values()]
        var = torch.cat(variances)
        mean = total / n
        return {
            "act_mean": mean,
            "act_std": max((total_sq - n * mean * mean) / max(n - 1.0, 1.0), 0.0) ** 0.5,  # as torch.std
            "act_sq": total_sq / n,
            "frac_zero": zeros / n,
            "frac_saturated": sat / n if self.saturating else float("nan"),
            "frac_dead": float((~alive).double().mean()),
            "example_std": float(var.mean().sqrt()) if var.numel() else float("nan"),
        }
