"""Builders for the nets the chapters use, with readable layer names.

- :func:`activation` — an activation module by name (every chapter).
- :func:`mlp` — a deep MLP of any depth and width; its blocks are named
  ``hidden1 … hiddenN`` and ``output``, each block holding ``linear``, an optional
  ``norm`` and ``act``, so every statistic is labelled by layer (chapters 0–5).
- :func:`small_cnn` — a small CNN with a choice of normalization (chapters 0 and 3).

>>> net = mlp(64, 10, depth=3, width=32, activation="tanh")
>>> [name for name, _ in net.named_children()]
['flatten', 'hidden1', 'hidden2', 'hidden3', 'output']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ._checks import check_choice, check_int, check_number

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "rrelu", "elu", "gelu", "identity")
MLP_NORMS = (None, "batch", "layer")
CNN_NORMS = (None, "batch", "layer", "instance", "group")


def activation(name: str, *, negative_slope: float = 0.01) -> nn.Module:
    """Return a fresh activation module by name.

    ``name`` is one of ``ACTIVATIONS``; ``negative_slope`` is used by
    ``leaky_relu`` (and is the initial slope of ``prelu``).

    >>> activation("leaky_relu", negative_slope=0.3)
    LeakyReLU(negative_slope=0.3)
    """
    check_choice("activation", name, ACTIVATIONS)
    check_number("negative_slope", negative_slope, minimum=0.0)
    return {
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(negative_slope),
        "prelu": lambda: nn.PReLU(init=negative_slope if negative_slope else 0.25),
        "rrelu": nn.RReLU,
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "identity": nn.Identity,
    }[name]()


_new_activation = activation  # for builders whose ``activation`` argument shadows the function


class Block(nn.Module):
    """``act(norm(linear(x)))`` (or ``norm`` after ``act``), plus ``x`` if residual.

    The residual connection is used only where input and output widths agree.
    """

    def __init__(
        self, n_in: int, n_out: int, act: str, norm: str | None, bias: bool, residual: bool,
        norm_position: str, negative_slope: float,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out, bias=bias)
        if norm is not None:
            self.norm = nn.BatchNorm1d(n_out) if norm == "batch" else nn.LayerNorm(n_out)
        self.act = activation(act, negative_slope=negative_slope)
        self.norm_position = norm_position
        self.residual = residual and n_in == n_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        norm = getattr(self, "norm", None)
        if norm is not None and self.norm_position == "before":
            h = norm(h)
        h = self.act(h)
        if norm is not None and self.norm_position == "after":
            h = norm(h)
        return x + h if self.residual else h


class MLP(nn.Sequential):
    """A deep MLP: ``hidden1 … hiddenN`` :class:`Block` layers, then an ``output`` linear layer."""

    def hidden_blocks(self) -> list[Block]:
        """The hidden blocks, first to last."""
        return [m for m in self if isinstance(m, Block)]


def mlp(
    in_features: int,
    out_features: int,
    *,
    depth: int = 4,
    width: int | Sequence[int] = 64,
    activation: str = "relu",
    norm: str | None = None,
    norm_position: str = "before",
    bias: bool = True,
    residual: bool = False,
    negative_slope: float = 0.01,
    flatten: bool = True,
) -> MLP:
    """Build a deep MLP with ``depth`` hidden layers.

    Args:
        in_features: input size (pixels or features per example).
        out_features: number of outputs (classes).
        depth: number of hidden layers (each linear → [norm] → activation).
        width: one int for every hidden layer, or a sequence of ``depth`` ints.
        activation: one of ``ACTIVATIONS``.
        norm: ``None``, ``"batch"`` (BatchNorm1d) or ``"layer"`` (LayerNorm).
        norm_position: ``"before"`` or ``"after"`` the activation.
        bias: give the linear layers biases.
        residual: add ``x`` to each block whose input and output widths agree.
        negative_slope: slope of ``leaky_relu`` (initial slope of ``prelu``).
        flatten: start with ``nn.Flatten`` so image batches can be fed directly.

    >>> mlp(64, 10, depth=2, width=[32, 16])(torch.zeros(5, 64)).shape
    torch.Size([5, 10])
    """
    check_int("in_features", in_features, minimum=1)
    check_int("out_features", out_features, minimum=1)
    check_int("depth", depth, minimum=1)
    check_choice("norm", norm, MLP_NORMS)
    check_choice("norm_position", norm_position, ("before", "after"))
    check_choice("activation", activation, ACTIVATIONS)
    if isinstance(width, int) and not isinstance(width, bool):
        widths = [check_int("width", width, minimum=1)] * depth
    elif isinstance(width, Sequence) and not isinstance(width, str):
        widths = [check_int("width", w, minimum=1) for w in width]
        if len(widths) != depth:
            raise ValueError(f"width={widths!r} has {len(widths)} entries but depth={depth}; give one per hidden layer")
    else:
        raise TypeError(f"width must be an int or a sequence of ints, got {width!r}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if flatten:
        layers["flatten"] = nn.Flatten()
    sizes = [in_features, *widths]
    for i in range(depth):
        layers[f"hidden{i + 1}"] = Block(
            sizes[i], sizes[i + 1], activation, norm, bias, residual, norm_position, negative_slope
        )
    layers["output"] = nn.Linear(sizes[-1], out_features, bias=bias)
    return MLP(layers)


def _norm2d(norm: str | None, channels: int, groups: int) -> nn.Module:
    if norm is None:
        return nn.Identity()
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.GroupNorm(channels, channels)  # InstanceNorm with a learnable affine
    if norm == "layer":
        return nn.GroupNorm(1, channels)  # LayerNorm over (C, H, W)
    if channels % groups:
        raise ValueError(f"groups={groups} must divide the channel count {channels}")
    return nn.GroupNorm(groups, channels)


def small_cnn(
    in_channels: int = 1,
    n_classes: int = 10,
    *,
    channels: Sequence[int] = (16, 32),
    norm: str | None = None,
    groups: int = 4,
    activation: str = "relu",
) -> nn.Sequential:
    """A small CNN: per stage conv3×3 → norm → activation (→ 2×2 max-pool but the last),
    then global average pooling and a linear ``output`` layer.

    ``norm`` is one of ``None``, ``"batch"``, ``"layer"`` (GroupNorm with one group,
    i.e. LayerNorm over C, H, W), ``"instance"`` (GroupNorm with one channel per
    group) or ``"group"`` (``groups`` groups; Wu & He 2018).

    >>> small_cnn(norm="group")(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    check_int("in_channels", in_channels, minimum=1)
    check_int("n_classes", n_classes, minimum=1)
    check_choice("norm", norm, CNN_NORMS)
    check_choice("activation", activation, ACTIVATIONS)
    check_int("groups", groups, minimum=1)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    previous = in_channels
    for i, ch in enumerate(channels):
        check_int("channels", ch, minimum=1)
        stage = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(previous, ch, 3, padding=1, bias=norm is None),
                norm=_norm2d(norm, ch, groups),
                act=_new_activation(activation),
            )
        )
        layers[f"conv{i + 1}"] = stage
        if i < len(channels) - 1:
            layers[f"pool{i + 1}"] = nn.MaxPool2d(2)
        previous = ch
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["output"] = nn.Linear(previous, n_classes)
    return nn.Sequential(layers)
