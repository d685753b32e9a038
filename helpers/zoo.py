"""Models practitioners really use, built from their configs with random weights (no download),
with a batch each, for testing the monitor and the health report on them.

Each :class:`Specimen` holds a model, a batch in the form its users hold it, the optimizer it is
usually trained with, and what it computes: its number of nonlinearity calls per forward pass
and of trainable matrices (two or more dimensions). Hugging Face ``transformers`` models need
that package (``pip install transformers``); the others need only torch.

- ``bert``, ``gpt2``, ``vit``, ``resnet``, ``convnext`` — Hugging Face models from small configs;
- ``lstm`` — an ``nn.LSTM`` text classifier; ``transformer`` — an ``nn.TransformerEncoder`` one;
- ``resnet_basic`` — a torchvision-style ResNet whose one ReLU module runs twice per block, with
  the last BatchNorm of each block zero-initialised (timm's and Goyal et al.'s zero-γ).

>>> s = build("lstm")
>>> s.calls, s.matrices
(1, 4)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_choice

NAMES = ("bert", "gpt2", "vit", "resnet", "convnext", "lstm", "transformer", "resnet_basic")


@dataclass
class Specimen:
    """A model, its batch, its usual optimizer (a function of the parameters) and what it computes."""

    name: str
    model: nn.Module
    data: object
    optimizer: Callable
    calls: int  # nonlinearity calls per forward pass
    matrices: int  # trainable parameters with two or more dimensions
    traits: str


def _tokens(vocab: int, n: int = 16, length: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(seed))


def _images(n: int = 16, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _labels(k: int, n: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))


def _adamw(lr: float, warmup: int = 0) -> Callable:
    """AdamW at ``lr``; with ``warmup`` steps of linear warmup, as a scheduler sets it for the first step."""
    def make(params):
        opt = torch.optim.AdamW(params, lr=lr)
        if warmup:
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warmup, total_iters=warmup)
        return opt

    return make


def _bert() -> Specimen:
    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, num_labels=3)
    model = BertForSequenceClassification(cfg)
    ids = _tokens(100)
    data = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": _labels(3)}
    # 2 GELUActivation calls + the pooler's tanh; 6 per layer (q, k, v, out, in, out) + 3 embeddings + pooler + head
    return Specimen("bert", model, data, _adamw(5e-5), 3, 2 * 6 + 3 + 2, "a library's own GELU class; embeddings")


def _gpt2() -> Specimen:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=2)
    model = GPT2LMHeadModel(cfg)
    ids = _tokens(100)
    # NewGELUActivation once per layer; Conv1D c_attn, c_proj, c_fc, c_proj per layer + wte (tied head) + wpe
    return Specimen("gpt2", model, {"input_ids": ids, "labels": ids}, _adamw(6e-4), 2, 2 * 4 + 2,
                    "Hugging Face's Conv1D (transposed weights); tied embedding and head")


def _vit() -> Specimen:
    from transformers import ViTConfig, ViTForImageClassification

    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, num_labels=5)
    model = ViTForImageClassification(cfg)
    # 2 GELUs; q, k, v, out, in, out per layer + the patch projection + the head
    return Specimen("vit", model, (_images(), _labels(5)), _adamw(1e-3), 2, 2 * 6 + 2, "attention, patch conv")


def _resnet() -> Specimen:
    from transformers import ResNetConfig, ResNetForImageClassification

    cfg = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic", num_labels=5)
    model = ResNetForImageClassification(cfg)
    calls = sum(1 for m in model.modules() if type(m).__name__ == "ReLU")
    mats = sum(1 for p in model.parameters() if p.ndim >= 2)
    return Specimen("resnet", model, (_images(), _labels(5)), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                    calls, mats, "BatchNorm, SGD with momentum at lr 0.1")


def _convnext() -> Specimen:
    from transformers import ConvNextConfig, ConvNextForImageClassification

    cfg = ConvNextConfig(num_channels=3, num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], num_labels=5,
                         layer_scale_init_value=1e-6)
    model = ConvNextForImageClassification(cfg)
    mats = sum(1 for p in model.parameters() if p.ndim >= 2)
    return Specimen("convnext", model, (_images(), _labels(5)), _adamw(4e-3, warmup=100), 2, mats,
                    "LayerScale (γ = 1e-6), a library's own GELU class, LayerNorm")


class _LSTMClassifier(nn.Module):
    def __init__(self, vocab: int = 100, k: int = 3) -> None:
        super().__init__()
        self.embed, self.lstm = nn.Embedding(vocab, 16), nn.LSTM(16, 32, batch_first=True)
        self.head = nn.Linear(32, k)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(ids))
        return self.head(torch.tanh(out[:, -1]))


def _lstm() -> Specimen:
    torch.manual_seed(0)
    # the tanh on the last state; embedding, weight_ih, weight_hh, head (the LSTM's gates run inside its kernel)
    return Specimen("lstm", _LSTMClassifier(), (_tokens(100), _labels(3)), lambda p: torch.optim.Adam(p, lr=1e-3),
                    1, 4, "recurrent matrices, an embedding")


class _EncoderClassifier(nn.Module):
    def __init__(self, vocab: int = 100, k: int = 3, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        block = nn.TransformerEncoderLayer(32, 2, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(32, k)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(ids)).mean(dim=1))


def _transformer() -> Specimen:
    torch.manual_seed(0)
    # one functional relu per layer; in_proj, out_proj, linear1, linear2 per layer + embedding + head
    return Specimen("transformer", _EncoderClassifier(), (_tokens(100), _labels(3)), _adamw(1e-3), 2, 2 * 4 + 2,
                    "functional relu inside nn.TransformerEncoderLayer, attention's packed projections")


class _BasicBlock(nn.Module):
    """torchvision's BasicBlock: one ReLU module called twice; the last BatchNorm zero-initialised."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


def _resnet_basic() -> Specimen:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
                          _BasicBlock(16), _BasicBlock(16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))
    return Specimen("resnet_basic", model, (_images(), _labels(5)), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                    1 + 2 * 2, 1 + 2 * 2 + 1, "a ReLU module called twice per block, zero-γ last BatchNorm")


_BUILDERS = {"bert": _bert, "gpt2": _gpt2, "vit": _vit, "resnet": _resnet, "convnext": _convnext, "lstm": _lstm,
             "transformer": _transformer, "resnet_basic": _resnet_basic}


def build(name: str) -> Specimen:
    """The specimen ``name`` (one of ``NAMES``), with random weights from a fixed seed."""
    check_choice("name", name, NAMES)
    torch.manual_seed(0)
    return _BUILDERS[name]()
