r"""A small conv net with squeeze-and-excitation blocks, for 8 × 8 images.

A squeeze-and-excitation (SE) unit (Hu et al. 2018, "Squeeze-and-Excitation Networks")
rescales each channel of a feature map :math:`x` by a gate computed from the whole map:

.. math:: s = g\bigl(W_2\,\mathrm{relu}(W_1\,\bar x)\bigr), \qquad y_c = s_c\, x_c,

where :math:`\bar x` is the per-channel mean over positions (the *squeeze*) and :math:`g` the
sigmoid (the *excitation*). A sigmoid starts near :math:`\sigma(0) = 0.5`, so a fresh unit
halves its channels; the ``"2sigmoid"`` gate, :math:`2\sigma`, starts at 1 instead.

:class:`SENet` is the net of the diagnosis chapter's squeeze-and-excitation case: a stem
convolution (+ BatchNorm) and ReLU, ``n_blocks`` blocks conv → BN → ReLU → conv → BN → SE
(+ the block's input when residual) → ReLU (He et al. 2016), global average pooling and three
dense layers. ``bn=False`` and ``residual=False`` give the plain stack.

>>> net = SENet(n_blocks=2)
>>> net(torch.zeros(5, 1, 8, 8)).shape
torch.Size([5, 10])
>>> net.watched()
('blocks.1.se', 'blocks.1.se.gate')
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_choice, check_int

GATES = ("sigmoid", "2sigmoid", None)


class SqueezeExcite(nn.Module):
    """Squeeze (global average pool) and excite (two dense layers, a gate) each channel.

    ``gate="2sigmoid"`` multiplies the sigmoid by 2 (it starts at 1 instead of 0.5); the
    ``gate`` module is the sigmoid itself either way, so its output is in (0, 1).

    >>> se = SqueezeExcite(8)
    >>> se(torch.ones(2, 8, 4, 4)).shape
    torch.Size([2, 8, 4, 4])
    """

    def __init__(self, channels: int, ratio: int = 4, gate: str = "sigmoid") -> None:
        super().__init__()
        check_int("channels", channels, minimum=1)
        check_int("ratio", ratio, minimum=1)
        check_choice("gate", gate, GATES[:2])
        hidden = max(1, channels // ratio)
        self.fc1, self.relu = nn.Linear(channels, hidden), nn.ReLU()
        self.fc2, self.gate = nn.Linear(hidden, channels), nn.Sigmoid()
        self.scale = 2.0 if gate == "2sigmoid" else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale * self.gate(self.fc2(self.relu(self.fc1(x.mean((2, 3))))))
        return x * s[:, :, None, None]


class SEBlock(nn.Module):
    """conv → BN → ReLU → conv → BN → squeeze-excite, plus the input if residual, then ReLU."""

    def __init__(self, channels: int, bn: bool = True, gate: str | None = "sigmoid", residual: bool = True) -> None:
        super().__init__()
        check_choice("gate", gate, GATES)
        norm = (lambda: nn.BatchNorm2d(channels)) if bn else nn.Identity
        self.conv1, self.bn1, self.act1 = nn.Conv2d(channels, channels, 3, padding=1), norm(), nn.ReLU()
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, padding=1), norm()
        self.se = SqueezeExcite(channels, gate=gate) if gate else nn.Identity()
        self.residual, self.act2 = bool(residual), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.se(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        return self.act2(x + h if self.residual else h)


class SENet(nn.Module):
    """Stem conv, ``n_blocks`` :class:`SEBlock`, global average pooling and three dense layers.

    Args:
        channels: feature maps in every block.
        n_blocks: number of blocks.
        bn: BatchNorm after each convolution (else none).
        gate: ``"sigmoid"``, ``"2sigmoid"`` or None (no SE unit).
        residual: add each block's input to its output.
        in_channels, n_classes: of the images and of the output.
    """

    def __init__(self, channels: int = 16, n_blocks: int = 3, bn: bool = True, gate: str | None = "sigmoid",
                 residual: bool = True, in_channels: int = 1, n_classes: int = 10) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("n_blocks", n_blocks), ("in_channels", in_channels),
                            ("n_classes", n_classes)):
            check_int(name, value, minimum=1)
        check_choice("gate", gate, GATES)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1),
                                  nn.BatchNorm2d(channels) if bn else nn.Identity(), nn.ReLU())
        self.blocks = nn.ModuleList(SEBlock(channels, bn, gate, residual) for _ in range(n_blocks))
        self.head = nn.Sequential(nn.Linear(channels, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                  nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h.mean((2, 3)))

    def watched(self) -> tuple[str, str | None]:
        """Names of the middle block's output to watch and of its gate: the SE unit's output
        (the gated activations) and its sigmoid, or the whole block and None without SE."""
        middle = len(self.blocks) // 2
        if isinstance(self.blocks[middle].se, SqueezeExcite):
            return f"blocks.{middle}.se", f"blocks.{middle}.se.gate"
        return f"blocks.{middle}", None
