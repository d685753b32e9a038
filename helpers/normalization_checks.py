r"""Exact checks of the normalization chapter's algebra: small measurements with a known answer.

Each function runs one check on fixed random tensors and returns the numbers the chapter asserts:

- :func:`convention_gaps` — PyTorch's running statistics against the biased variance and Keras's
  meaning of momentum;
- :func:`batch_of_one_error` — ``nn.BatchNorm1d`` refusing a batch of one in training mode;
- :func:`emulation_gaps` — :class:`~helpers.normalization.PerWorkerBatchNorm2d` with one worker
  against ``nn.BatchNorm2d``;
- :func:`batch_mate_probabilities`, :func:`batch_mate_changes` — how an example's output moves
  with its batch mates;
- :func:`batch_of_two` — BatchNorm over two values, which keeps one bit per feature;
- :func:`keras_momentum_table`, :func:`eps_zero_change` — the answers to exercises 1 and 2.

The chapter's from-scratch BatchNorm, ``batch_norm(x, gamma, beta, running_mean, running_var, *,
training, eps)``, is passed in where a check needs it.

>>> gaps = convention_gaps()
>>> gaps.unbiased_var < 1e-5 < gaps.biased_var
True
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from ._checks import check_int, check_number
from .normalization import PerWorkerBatchNorm2d, label_probability


@dataclass
class ConventionGaps:
    """Largest differences from ``nn.BatchNorm1d``'s running statistics after one step."""

    unbiased_var: float  #: running variance rebuilt from the unbiased batch variance (matches)
    biased_var: float  #: running variance rebuilt from the biased batch variance (off)
    keras_mean: float  #: running mean rebuilt with Keras's meaning of momentum 0.9 (off)


def convention_gaps(seed: int = 1) -> ConventionGaps:
    """One training step of ``nn.BatchNorm1d(6)`` (momentum 0.1) on a ``[32, 6]`` batch of spread 3;
    its running statistics against three rebuilds by hand (see :class:`ConventionGaps`)."""
    torch.manual_seed(check_int("seed", seed, minimum=0))
    layer, x = nn.BatchNorm1d(6), torch.randn(32, 6) * 3
    layer(x)
    biased_running_var = 0.9 * 1 + 0.1 * x.var(0, unbiased=False)
    keras_running_mean = 0.1 * 0 + 0.9 * x.mean(0)  # "momentum=0.9" read as Keras reads it
    return ConventionGaps(
        unbiased_var=(layer.running_var - (0.9 + 0.1 * x.var(0))).abs().max().item(),
        biased_var=(biased_running_var - layer.running_var).abs().max().item(),
        keras_mean=(keras_running_mean - layer.running_mean).abs().max().item())


def batch_of_one_error(features: int = 4) -> str | None:
    """The message of the ``ValueError`` ``nn.BatchNorm1d`` raises for a batch of one example in
    training mode, or ``None`` if it accepts the batch."""
    layer = nn.BatchNorm1d(check_int("features", features, minimum=1)).train()
    try:
        layer(torch.randn(1, features))
    except ValueError as error:
        return str(error)
    return None


def emulation_gaps(channels: int = 4, per_worker: int = 64, seed: int = 0) -> tuple[float, float]:
    """Largest differences between ``nn.BatchNorm2d`` and a
    :class:`~helpers.normalization.PerWorkerBatchNorm2d` whose one worker holds the whole batch of
    ``per_worker`` ``3×3`` maps: (outputs, running variance)."""
    torch.manual_seed(check_int("seed", seed, minimum=0))
    plain = nn.BatchNorm2d(check_int("channels", channels, minimum=1))
    emulated = PerWorkerBatchNorm2d(channels, per_worker=check_int("per_worker", per_worker, minimum=2))
    xb = torch.randn(per_worker, channels, 3, 3)
    out_gap = (plain(xb) - emulated(xb)).abs().max().item()
    return out_gap, (plain.running_var - emulated.running_var).abs().max().item()


def batch_mate_probabilities(model: nn.Module, x: torch.Tensor, y: torch.Tensor, index: int = 0,
                             draws: int = 20, mates: int = 3, seed: int = 0) -> dict[str, list[float]]:
    """The probability of example ``index``'s true label, classified ``draws`` times in a batch
    with ``mates`` random other examples: first in training mode, then in evaluation mode.

    Works on a copy (a training-mode pass moves the running statistics; the evaluation-mode
    passes see the copy's statistics after the training-mode ones). Returns lists by mode,
    ``{"training": [...], "evaluation": [...]}``.
    """
    check_int("index", index, minimum=0)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    drawn = [torch.randint(1, len(x), (check_int("mates", mates, minimum=1),), generator=gen)
             for _ in range(check_int("draws", draws, minimum=1))]
    probe = copy.deepcopy(model)
    return {"training": [label_probability(probe.train(), x, y, index, m) for m in drawn],
            "evaluation": [label_probability(probe.eval(), x, y, index, m) for m in drawn]}


@torch.no_grad()
def batch_mate_changes(layers: Mapping[str, nn.Module], x: torch.Tensor) -> dict[str, float]:
    """Largest change of the first example's output under each layer when every other example of
    ``x`` is replaced by a fresh draw, ``2·N(0, 1) − 1`` (from torch's global generator)."""
    x_other = x.clone()
    x_other[1:] = 2 * torch.randn(x[1:].shape) - 1
    return {name: (layer(x)[0] - layer(x_other)[0]).abs().max().item() for name, layer in layers.items()}


@dataclass
class BatchOfTwo:
    """BatchNorm over a batch of two examples (see :func:`batch_of_two`)."""

    pair: torch.Tensor  #: the two examples, ``[2, features]``
    out_eps0: torch.Tensor  #: the from-scratch BatchNorm's output with ε = 0
    out_default: torch.Tensor  #: ``nn.BatchNorm1d``'s output, default ε

    @property
    def off_one_eps0(self) -> float:
        """Largest ``| |y| − 1 |`` with ε = 0."""
        return (self.out_eps0.abs() - 1).abs().max().item()

    @property
    def off_one_default(self) -> float:
        """Largest ``| |y| − 1 |`` with the default ε."""
        return (self.out_default.abs() - 1).abs().max().item()

    @property
    def sign_is_order(self) -> bool:
        """Whether the first example's output has the sign of ``pair[0] − pair[1]`` everywhere."""
        return torch.equal(torch.sign(self.out_eps0[0]), torch.sign(self.pair[0] - self.pair[1]))

    def summary(self) -> str:
        """The first example's first six outputs with ε = 0, and how far ``|y|`` is from 1."""
        return "\n".join([
            "batch of two, eps=0, first example, first 6 features:",
            "  " + "  ".join(f"{v:+.4f}" for v in self.out_eps0[0, :6].tolist()),
            f"largest | |y| - 1 |, eps=0: {self.off_one_eps0:.1e}",
            f"largest | |y| - 1 |, default eps=1e-5: {self.off_one_default:.1e}"])

    def off_formula(self, eps: float = 1e-5) -> float:
        """Largest difference of ``|y|`` (default ε) from ``|d| / sqrt(d² + 4ε)``, ``d`` the gap."""
        d = (self.pair[0] - self.pair[1]).abs()
        return (self.out_default.abs() - d / torch.sqrt(d**2 + 4 * eps)).abs().max().item()


def batch_of_two(batch_norm: Callable, features: int = 16, seed: int = 0) -> BatchOfTwo:
    """Normalize a batch of two random examples in training mode with ``batch_norm`` (ε = 0, unit
    γ, zero β) and with ``nn.BatchNorm1d`` (default ε)."""
    torch.manual_seed(check_int("seed", seed, minimum=0))
    pair = torch.randn(2, check_int("features", features, minimum=1))
    ones, zeros = torch.ones(features), torch.zeros(features)
    out_eps0 = batch_norm(pair, ones, zeros, zeros.clone(), ones.clone(), training=True, eps=0.0)
    out_default = nn.BatchNorm1d(features).train()(pair).detach()
    return BatchOfTwo(pair, out_eps0, out_default)


def keras_momentum_table(keras_momentum: float = 0.99, batches: int = 5, seed: int = 0) -> pd.DataFrame:
    """``nn.BatchNorm1d(3, momentum=1 − keras_momentum)``'s running mean against Keras's update
    ``moving = k·moving + (1 − k)·batch_mean``, after ``batches`` batches of 16 (mean 2), by feature."""
    k = check_number("keras_momentum", keras_momentum, minimum=0.0, maximum=1.0)
    torch.manual_seed(check_int("seed", seed, minimum=0))
    layer = nn.BatchNorm1d(3, momentum=1 - k).train()
    moving_mean = torch.zeros(3)
    for _ in range(check_int("batches", batches, minimum=1)):
        xb = torch.randn(16, 3) + 2
        layer(xb)
        moving_mean = k * moving_mean + (1 - k) * xb.mean(0)
    return pd.DataFrame({"PyTorch running_mean": layer.running_mean, "Keras moving_mean": moving_mean,
                         "difference": (layer.running_mean - moving_mean).abs()}).rename_axis("feature")


@torch.no_grad()
def eps_zero_change(batch_norm: Callable, x: torch.Tensor, features: int = 8, scale: float = 10.0,
                    seed: int = 1) -> float:
    """Largest change of a training-mode BatchNorm with ε = 0 (``batch_norm``, unit γ, zero β) when
    the weights of the bias-free linear layer before it (``seed``) are multiplied by ``scale``."""
    torch.manual_seed(check_int("seed", seed, minimum=0))
    lin0 = nn.Linear(x.shape[1], check_int("features", features, minimum=1), bias=False)
    h, ones, zeros = lin0(x), torch.ones(features), torch.zeros(features)
    scale = check_number("scale", scale, minimum=0.0, strict=True)
    out = [batch_norm(k * h, ones, zeros, zeros.clone(), ones.clone(), training=True, eps=0.0) for k in (1, scale)]
    return (out[0] - out[1]).abs().max().item()
