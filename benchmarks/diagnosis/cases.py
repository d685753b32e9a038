"""The diagnosis benchmark's cases: small PyTorch training programs with known answers.

Each :class:`Case` is a model builder, the data it trains on, the optimizer and learning rate
it trains with, and its label: the fault it carries (``None`` for a healthy program), the
layer where the fault sits (for faults that have one), the fix, why the label is true, and the
published benchmark or post it is ported from. Every broken case names its healthy twin (the
same program, fixed); ``hurts.py`` checks over seeds that the broken one trains clearly worse.

Faults are the classes the book teaches and the research detectors use (AutoTrainer, ICSE 2021;
DeepDiagnosis, ICSE 2022; DeepLocalize, ICSE 2021): vanishing and exploding gradients, dying
ReLU, saturation, collapsed signal, a learning rate too large or too small, stale BatchNorm
statistics, unnormalised inputs, and a softmax before the cross-entropy.

Families: MLPs, CNNs, residual MLPs, an LSTM and a tiny transformer; data: the digits (vectors
and 8×8 images), MNIST-1D (vectors and sequences) and Gaussian blobs, all generated or bundled.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from helpers import data, init, models

FAULTS = ("vanishing", "exploding", "dead", "saturated", "collapsed", "lr_too_large", "lr_too_small",
          "stale_batchnorm", "unnormalised_inputs", "softmax_before_loss")
#: The report's problem codes that count as detecting each fault.
DETECTED_BY: dict[str, set[str]] = {
    "vanishing": {"vanishing"}, "exploding": {"exploding"}, "dead": {"dead"}, "saturated": {"saturated"},
    "collapsed": {"collapsed"}, "lr_too_large": {"update_large", "exploding"}, "lr_too_small": {"update_small"},
    "stale_batchnorm": {"stale_batchnorm"}, "unnormalised_inputs": {"inputs_unscaled"},
    "softmax_before_loss": {"softmax_output"},
}
AUTOTRAINER = "AutoTrainer (Zhang et al., ICSE 2021), its MNIST/Circle/Blob model families"
DEEPLOCALIZE = "DeepLocalize (Wardat et al., ICSE 2021), Stack Overflow trainability faults"
BOOK = "this book's chapters"


@dataclass(frozen=True)
class Case:
    """One labelled training program (see the module)."""

    name: str
    family: str
    dataset: str
    build: Callable[[int], nn.Module] = field(repr=False)
    optimizer: str = "sgd"
    lr: float = 0.05
    fault: str | None = None
    layers: tuple[str, ...] = ()  # where the fault sits (any of these is right); () = not localisable
    fix: str = ""
    why: str = ""
    source: str = BOOK
    twin: str | None = None
    steps: int = 200  # training steps of the hurts check


# -- data --------------------------------------------------------------------------------------------
@functools.cache
def dataset(name: str) -> data.Dataset:
    """The case's data: ``digits`` (64 standardised pixels), ``digits_raw`` (bytes 0-255),
    ``images`` (1×8×8), ``images_raw``, ``mnist1d`` (40 points), ``mnist1d_seq`` (40 steps × 1),
    ``blobs`` (8 features, 4 classes)."""
    if name in ("digits", "digits_raw"):
        return data.load_digits("standardized" if name == "digits" else "bytes", seed=0)
    if name in ("images", "images_raw"):
        return data.load_digits("standardized" if name == "images" else "bytes", flatten=False, seed=0)
    if name in ("mnist1d", "mnist1d_seq", "mnist1d_raw"):
        ds = data.load_mnist1d(2000, seed=0)
        if name == "mnist1d_raw":
            return data.Dataset(ds.name + " ×100", ds.x_train * 100, ds.y_train, ds.x_test * 100, ds.y_test,
                                ds.n_classes)
        if name == "mnist1d_seq":
            return data.Dataset(ds.name + " (sequences)", ds.x_train[..., None], ds.y_train, ds.x_test[..., None],
                                ds.y_test, ds.n_classes)
        return ds
    if name == "images_seq":  # the 8×8 digit images read row by row: 8 steps of 8 pixels
        ds = dataset("images")
        return data.Dataset(ds.name + " (rows as sequences)", ds.x_train[:, 0], ds.y_train, ds.x_test[:, 0],
                            ds.y_test, ds.n_classes)
    if name == "blobs_raw":  # the blobs in other units (×100), not standardised
        ds = dataset("blobs")
        return data.Dataset(ds.name + " ×100", ds.x_train * 100, ds.y_train, ds.x_test * 100, ds.y_test,
                            ds.n_classes)
    if name == "blobs":  # standardised, as every other healthy input here
        ds = data.make_blobs(1200, 4, 8, spread=2.0, seed=0)
        mean, std = ds.x_train.mean(0), ds.x_train.std(0)
        return data.Dataset(ds.name, (ds.x_train - mean) / std, ds.y_train, (ds.x_test - mean) / std, ds.y_test,
                            ds.n_classes)
    raise ValueError(f"dataset={name!r} is not valid")


def features(name: str) -> int:
    x = dataset(name).x_train
    return int(x[0].numel()) if x.ndim == 2 else int(x.shape[-1])


# -- families ----------------------------------------------------------------------------------------
class Recurrent(nn.Module):
    """An LSTM over a sequence, a tanh on its last state, a linear head."""

    def __init__(self, n_in: int, k: int, hidden: int = 32, softmax: bool = False) -> None:
        super().__init__()
        self.lstm, self.head = nn.LSTM(n_in, hidden, batch_first=True), nn.Linear(hidden, k)
        self.softmax = nn.Softmax(dim=1) if softmax else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.softmax(self.head(torch.tanh(out[:, -1])))


class Attention(nn.Module):
    """A tiny transformer encoder over a sequence (an input projection, two layers, mean pooling)."""

    def __init__(self, n_in: int, k: int, d: int = 32, layers: int = 2, softmax: bool = False) -> None:
        super().__init__()
        self.project = nn.Linear(n_in, d)
        block = nn.TransformerEncoderLayer(d, 2, 2 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, k)
        self.softmax = nn.Softmax(dim=1) if softmax else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.head(self.encoder(self.project(x)).mean(dim=1)))


def mlp(ds: str, seed: int, *, depth: int = 4, activation: str = "relu", scheme: str | None = "kaiming_normal",
        norm: str | None = None, residual: bool = False, softmax: bool = False, bias_layer: int | None = None,
        final_norm: bool = True, **init_kwargs) -> nn.Module:
    torch.manual_seed(seed)
    net = models.mlp(features(ds), dataset(ds).n_classes, depth=depth, activation=activation, norm=norm,
                     residual=residual)
    if scheme is not None:
        gain_of = activation if activation in ("relu", "tanh", "sigmoid", "leaky_relu") else None
        init.init_(net, scheme, activation=init_kwargs.pop("activation", gain_of), seed=seed, **init_kwargs)
    if residual and final_norm:  # normalise the residual stream before the head, as pre-norm nets do
        net.output = nn.Sequential(nn.LayerNorm(net.output.in_features), net.output)
    if bias_layer is not None:  # every unit of this layer starts (and stays) silent
        with torch.no_grad():
            net.get_submodule(f"hidden{bias_layer}.linear").bias.fill_(-20.0)
    return nn.Sequential(net, nn.Softmax(dim=1)) if softmax else net


def cnn(ds: str, seed: int, *, norm: str | None = None, activation: str = "relu", softmax: bool = False,
        scale: float = 1.0, bias_conv: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    net = models.small_cnn(1, dataset(ds).n_classes, norm=norm, activation=activation)
    if scale != 1.0:
        init.init_(net, "kaiming_normal", scale=scale, seed=seed)
    if bias_conv:
        with torch.no_grad():
            net.get_submodule("conv2.conv").bias.fill_(-20.0)
    return nn.Sequential(net, nn.Softmax(dim=1)) if softmax else net


def recurrent(ds: str, seed: int, *, softmax: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return Recurrent(features(ds), dataset(ds).n_classes, softmax=softmax)


def attention(ds: str, seed: int, *, softmax: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    return Attention(features(ds), dataset(ds).n_classes, softmax=softmax)


def stale(build: Callable[[int], nn.Module], ds: str) -> Callable[[int], nn.Module]:
    """``build``'s model with BatchNorm running statistics from other data (inputs ×5 + 3, as after a
    change of preprocessing between training and serving)."""

    def make(seed: int) -> nn.Module:
        net = build(seed)
        x = dataset(ds).x_train[:512]
        with torch.no_grad():
            net.train()
            for _ in range(30):
                net(x * 5 + 3)
        return net

    return make


# -- the cases ---------------------------------------------------------------------------------------
P = functools.partial


def _healthy() -> list[Case]:
    h = []
    for ds in ("digits", "mnist1d", "blobs"):
        h += [Case(f"mlp-relu-{ds}-sgd", "mlp", ds, P(mlp, ds), "sgd", 0.05),
              Case(f"mlp-relu-{ds}-adam", "mlp", ds, P(mlp, ds), "adam", 1e-3)]
    for ds in ("digits", "mnist1d"):
        h += [Case(f"mlp-tanh-{ds}-sgd", "mlp", ds, P(mlp, ds, activation="tanh", scheme="xavier_normal"), "sgd", 0.05),
              Case(f"mlp-tanh-{ds}-adam", "mlp", ds, P(mlp, ds, activation="tanh", scheme="xavier_normal"), "adam",
                   1e-3),
              Case(f"mlp-bn-{ds}-sgd", "mlp", ds, P(mlp, ds, depth=8, norm="batch", scheme=None), "sgd", 0.05),
              Case(f"mlp-bn20-{ds}-sgd", "mlp", ds, P(mlp, ds, depth=20, norm="batch", scheme=None), "sgd", 0.02),
              Case(f"mlp-ln-{ds}-adam", "mlp", ds, P(mlp, ds, depth=8, norm="layer"), "adam", 1e-3),
              Case(f"mlp-gelu-{ds}-adam", "mlp", ds, P(mlp, ds, activation="gelu", scheme=None), "adam", 1e-3),
              Case(f"mlp-leaky-{ds}-sgd", "mlp", ds, P(mlp, ds, activation="leaky_relu"), "sgd", 0.05),
              Case(f"residual-{ds}-sgd", "residual", ds, P(mlp, ds, depth=8, residual=True, scale=0.5), "sgd", 0.02),
              Case(f"residual-bn-{ds}-sgd", "residual", ds, P(mlp, ds, depth=8, residual=True, norm="batch",
                                                             scheme=None), "sgd", 0.05),
              Case(f"lstm-{ds}-adam", "lstm", f"{ds}_seq" if ds == "mnist1d" else "images_seq",
                   P(recurrent, f"{ds}_seq" if ds == "mnist1d" else "images_seq"), "adam", 3e-3)]
    for norm in (None, "batch", "group"):
        h += [Case(f"cnn-{norm or 'plain'}-sgd", "cnn", "images", P(cnn, "images", norm=norm), "sgd", 0.05),
              Case(f"cnn-{norm or 'plain'}-adam", "cnn", "images", P(cnn, "images", norm=norm), "adam", 1e-3)]
    h += [Case("transformer-mnist1d-adamw", "transformer", "mnist1d_seq", P(attention, "mnist1d_seq"), "adamw", 1e-3),
          Case("transformer-mnist1d-adamw-slow", "transformer", "mnist1d_seq", P(attention, "mnist1d_seq"),
               "adamw", 3e-4),
          Case("transformer-images-adamw", "transformer", "images_seq", P(attention, "images_seq"), "adamw", 1e-3),
          Case("lstm-mnist1d-adam-slow", "lstm", "mnist1d_seq", P(recurrent, "mnist1d_seq"), "adam", 1e-3),
          Case("mlp-relu-deep-digits-sgd", "mlp", "digits", P(mlp, "digits", depth=10), "sgd", 0.02),
          Case("mlp-relu-deep-mnist1d-sgd", "mlp", "mnist1d", P(mlp, "mnist1d", depth=10), "sgd", 0.02),
          Case("cnn-batch-adamw", "cnn", "images", P(cnn, "images", norm="batch"), "adamw", 1e-3),
          Case("mlp-tanh-blobs-sgd", "mlp", "blobs", P(mlp, "blobs", activation="tanh", scheme="xavier_normal"),
               "sgd", 0.05)]
    return h


def _broken(fault: str, name: str, twin: Case, build: Callable[[int], nn.Module], *, layers: tuple[str, ...] = (),
            fix: str, why: str, source: str = BOOK, dataset_name: str | None = None, optimizer: str | None = None,
            lr: float | None = None) -> Case:
    return Case(name, twin.family, dataset_name or twin.dataset, build, optimizer or twin.optimizer,
                lr if lr is not None else twin.lr, fault, layers, fix, why, source, twin.name)


def _broken_cases(h: dict[str, Case]) -> list[Case]:
    b = []
    sig = "sigmoid's slope is at most 1/4, so the backward signal shrinks by about 4 per layer (chapter 1)"
    for ds, depth, scheme in (("digits", 10, None), ("mnist1d", 10, None), ("blobs", 10, None),
                              ("mnist1d", 15, "xavier_normal")):
        b.append(_broken("vanishing", f"vanishing-sigmoid{depth}-{ds}", h[f"mlp-relu-{ds}-sgd"],
                         P(mlp, ds, depth=depth, activation="sigmoid", scheme=scheme), layers=("hidden1.linear",),
                         fix="ReLU with Kaiming init", why=sig, source=AUTOTRAINER))
    he2 = "He et al.'s init doubled: each ReLU layer multiplies the signal's variance by 4 (chapter 2)"
    for ds in ("digits", "mnist1d"):
        b.append(_broken("exploding", f"exploding-kaimingx2-{ds}", h[f"mlp-relu-{ds}-sgd"],
                         P(mlp, ds, depth=10, scale=2.0), layers=("hidden1.act", "hidden1.linear"),
                         fix="Kaiming init at scale 1", why=he2, source=AUTOTRAINER))
    b.append(_broken("exploding", "exploding-residual16-digits", h["residual-digits-sgd"],
                     P(mlp, "digits", depth=16, residual=True, scale=1.5, final_norm=False),
                     layers=("hidden1.act", "hidden1.linear"),
                     fix="branches scaled down (or BatchNorm)", why="x + F(x) with F at full He scale: the variance "
                     "more than doubles per block, 16 blocks"))
    b.append(_broken("exploding", "exploding-kaimingx2-blobs", h["mlp-relu-blobs-sgd"],
                     P(mlp, "blobs", depth=10, scale=2.0), layers=("hidden1.act", "hidden1.linear"),
                     fix="Kaiming init at scale 1", why=he2, source=AUTOTRAINER))
    silent = "bias -20 on one layer: every unit outputs 0 for every input and passes no gradient (chapter 4)"
    for ds, layer in (("digits", 3), ("mnist1d", 3), ("blobs", 3), ("digits", 1)):
        b.append(_broken("dead", f"dead-layer{layer}-{ds}", h[f"mlp-relu-{ds}-sgd"], P(mlp, ds, bias_layer=layer),
                         layers=(f"hidden{layer}.act",), fix="biases at 0", why=silent, source=DEEPLOCALIZE))
    b.append(_broken("dead", "dead-conv2", h["cnn-plain-adam"], P(cnn, "images", bias_conv=True),
                     layers=("conv2.act",), fix="biases at 0", why=silent))
    sat = "N(0, 1) weights on 64 inputs: pre-activations of std 8, deep in tanh's flat tails (chapter 2)"
    for ds, act in (("digits", "tanh"), ("mnist1d", "tanh"), ("mnist1d", "sigmoid"), ("digits", "sigmoid")):
        b.append(_broken("saturated", f"saturated-{act}-{ds}", h[f"mlp-tanh-{ds}-sgd"],
                         P(mlp, ds, depth=6, activation=act, scheme="normal", std=1.0), layers=("hidden1.act",),
                         fix="Xavier init", why=sat, source=AUTOTRAINER))
    col = "N(0, 0.01²) weights: each layer shrinks the signal about 10-fold, ten layers (chapter 2)"
    for ds, act in (("digits", "tanh"), ("mnist1d", "tanh"), ("blobs", "tanh"), ("digits", "relu")):
        twin = h[f"mlp-tanh-{ds}-sgd"] if act == "tanh" else h[f"mlp-relu-{ds}-sgd"]
        b.append(_broken("collapsed", f"collapsed-{act}-{ds}", twin,
                         P(mlp, ds, depth=10, activation=act, scheme="normal", std=0.01),
                         fix="Xavier or Kaiming init", why=col, source=AUTOTRAINER))
    for base, lr in (("mlp-relu-digits-sgd", 5.0), ("cnn-plain-adam", 1.0), ("lstm-mnist1d-adam", 1.0),
                     ("transformer-mnist1d-adamw", 1.0)):
        t = h[base]
        b.append(_broken("lr_too_large", f"lr-large-{base}", t, t.build, lr=lr, fix=f"lr {t.lr:g}",
                         why=f"lr {lr:g}: one step moves the weights by about their own size", source=AUTOTRAINER))
    for base, lr in (("mlp-relu-digits-sgd", 1e-6), ("cnn-plain-adam", 1e-7), ("lstm-mnist1d-adam", 1e-7),
                     ("transformer-mnist1d-adamw", 1e-7)):
        t = h[base]
        b.append(_broken("lr_too_small", f"lr-small-{base}", t, t.build, lr=lr, fix=f"lr {t.lr:g}",
                         why=f"lr {lr:g}: a step changes the weights by under 1e-5 of their size", source=AUTOTRAINER))
    for base in ("mlp-bn-digits-sgd", "cnn-batch-sgd", "residual-bn-mnist1d-sgd"):
        t = h[base]
        b.append(_broken("stale_batchnorm", f"stale-{base}", t, stale(t.build, t.dataset),
                         fix="running statistics re-estimated on the data (or reset)",
                         why="running statistics from data of another scale and offset: evaluation normalises with "
                             "the wrong mean and variance (chapter 5)", source=DEEPLOCALIZE))
    for base, raw in (("mlp-relu-digits-sgd", "digits_raw"), ("mlp-relu-mnist1d-sgd", "mnist1d_raw"),
                      ("mlp-tanh-digits-sgd", "digits_raw"), ("mlp-relu-blobs-sgd", "blobs_raw")):
        t = h[base]
        b.append(_broken("unnormalised_inputs", f"raw-{base}", t, P(t.build.func, raw, **t.build.keywords),
                         dataset_name=raw, layers=("input",), fix="inputs standardised",
                         why="inputs of RMS ~100 where every init assumes ~1 (chapter 4)", source=DEEPLOCALIZE))
    for base in ("mlp-relu-digits-sgd", "cnn-plain-adam", "lstm-mnist1d-adam", "mlp-relu-mnist1d-sgd"):
        t = h[base]
        b.append(_broken("softmax_before_loss", f"softmax-{base}", t, P(t.build, softmax=True),
                         fix="no softmax: cross_entropy takes logits",
                         why="cross_entropy applies log-softmax itself: a softmax before it squashes the outputs "
                             "into [0, 1] and the gradient with them", source=DEEPLOCALIZE))
    return b


HEALTHY: list[Case] = _healthy()
BROKEN: list[Case] = _broken_cases({c.name: c for c in HEALTHY})
CASES: dict[str, Case] = {c.name: c for c in HEALTHY + BROKEN}


def label_table() -> list[dict]:
    """The label file's rows: each case's fault, where it sits, the fix, why, its source and twin."""
    return [{"case": c.name, "family": c.family, "dataset": c.dataset, "fault": c.fault or "healthy",
             "layers": " | ".join(c.layers), "fix": c.fix, "why": c.why, "source": c.source if c.fault else "",
             "twin": c.twin or "", "optimizer": c.optimizer, "lr": c.lr} for c in CASES.values()]


if __name__ == "__main__":  # python benchmarks/diagnosis/cases.py: write labels.csv
    import csv
    from pathlib import Path

    rows = label_table()
    with open(Path(__file__).with_name("labels.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} cases written to labels.csv")
