r"""Residual networks and transformers: why the identity path makes depth trainable.

A residual block computes :math:`x_{l+1} = x_l + s\,F(x_l)` with a branch
:math:`F = \text{linear}\to[\text{norm}]\to\text{relu}\to\text{linear}`. With He init of the
first linear (Var[w] = 2/n) and gain-1 init of the second (Var[w] = 1/n) the branch keeps the
variance, :math:`\mathbb E[F^2] = q_l`, and is uncorrelated with :math:`x_l`, so

.. math:: q_{l+1} = q_l + s^2 q_l = (1 + g^2)\,q_l,\qquad q_l = q_0 (1+g^2)^l,\ g^2 = s^2,

exponential growth (doubling per block for s = 1; De & Smith 2020). With a norm inside the
branch, :math:`F` no longer scales with :math:`x_l`: each block adds a fixed variance
(:math:`g^2 = 1/2`, the relu half of a unit-variance norm output) and growth is linear,
:math:`q_l = q_0 + l g^2`. The branch fixes of the literature keep :math:`q_L` bounded:
``scaled`` (s = 1/√L, so :math:`q_L \to q_0 e`), ``zero`` (Goyal et al. 2017), ``rezero``
(Bachlechner et al. 2020) and ``fixup`` (Zhang et al. 2019) start every block at the identity.

The transformer half: :class:`TinyTransformer` on synthetic tasks, pre- versus post-LN
(Xiong et al. 2020) and warmup with Adam (Liu et al. 2020).

Groundwork for the residual/transformer chapter, which is not written yet: no chapter imports this
module so far. First measurements (6 layers, d = 32): post-LN's gradients do *not* grow towards
the output at initialization, and post-LN trains without warmup at Adam 1e-3; at 1e-2 one seed of
three fails without warmup and trains with it.

>>> [name for name, _ in residual_mlp(8, 3, depth=2, width=16, branch="rezero").named_children()]
['stem', 'block1', 'block2', 'output']
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_int, check_number
from .hooks import capture
from .monitor import preserved_state
from .stats import update_ratio
from .train import Callback, Run

BRANCHES = ("plain", "scaled", "zero", "rezero", "fixup")
NORMS = (None, "batch", "layer")
INITS = ("he", "pytorch")
LN_POSITIONS = ("pre", "post")


class ResidualBlock(nn.Module):
    """``x + scale·F(x) + b``, ``F = linear1 → [norm] → relu → linear2``; ``F(x)`` alone if not ``skip``.

    For ``fixup`` the scalar biases ``bias1a, bias1b, bias2a, bias2b`` and the multiplier
    ``scale`` are parameters; for ``rezero`` only ``scale`` (α, from 0); otherwise they are
    constants (``scale`` = 1/√L for ``scaled``, else 1).
    """

    def __init__(self, width: int, branch: str, norm: str | None, depth: int, skip: bool, init: str) -> None:
        super().__init__()
        fixup = branch == "fixup"
        self.linear1 = nn.Linear(width, width, bias=not fixup)
        if norm is not None:
            self.norm = nn.BatchNorm1d(width) if norm == "batch" else nn.LayerNorm(width)
        self.linear2 = nn.Linear(width, width, bias=not fixup)
        self.skip = skip
        if init == "he":
            nn.init.kaiming_normal_(self.linear1.weight, nonlinearity="relu")  # Var[w] = 2/n
            nn.init.kaiming_normal_(self.linear2.weight, nonlinearity="linear")  # Var[w] = 1/n
            for lin in (self.linear1, self.linear2):
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
        self.bias1a = self.bias1b = self.bias2a = self.bias2b = 0.0
        self.scale: nn.Parameter | float = 1 / math.sqrt(depth) if branch == "scaled" else 1.0
        if branch in ("zero", "fixup"):
            for p in self.linear2.parameters():
                nn.init.zeros_(p)
        if branch == "rezero":
            self.scale = nn.Parameter(torch.zeros(()))
        if fixup:  # m = 2 layers per branch: rescale the inner layer by L^(-1/(2m-2)) = L^(-1/2)
            with torch.no_grad():
                self.linear1.weight.mul_(depth ** -0.5)
            for name in ("bias1a", "bias1b", "bias2a", "bias2b"):
                setattr(self, name, nn.Parameter(torch.zeros(())))
            self.scale = nn.Parameter(torch.ones(()))

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """``scale · F(x)``, the residual branch alone."""
        h = self.linear1(x + self.bias1a) + self.bias1b
        norm = getattr(self, "norm", None)
        h = torch.relu(norm(h) if norm is not None else h)
        return self.scale * self.linear2(h + self.bias2a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.branch(x) + self.bias2b
        return x + f if self.skip else f


class ResidualMLP(nn.Sequential):
    """``stem`` linear → ``block1 … blockL`` (:class:`ResidualBlock`) → ``output`` linear."""

    def blocks(self) -> list[ResidualBlock]:
        """The residual blocks, first to last."""
        return [m for m in self if isinstance(m, ResidualBlock)]


def residual_mlp(
    n_in: int, n_out: int, depth: int, width: int, *, branch: str = "plain", norm: str | None = None,
    skip: bool = True, init: str = "he",
) -> ResidualMLP:
    r"""An MLP whose ``depth`` hidden blocks compute :math:`x + s\,F(x)` (He et al. 2016).

    ``branch``: ``"plain"`` (s = 1), ``"scaled"`` (s = 1/√L), ``"zero"`` (last branch layer
    zero, Goyal et al. 2017), ``"rezero"`` (s = α, a learnable scalar from 0, Bachlechner et
    al. 2020) or ``"fixup"`` (Zhang et al. 2019, simplified: two linear layers per branch, the
    first He-initialised and scaled by :math:`L^{-1/(2m-2)} = L^{-1/2}`, the second zero,
    scalar biases before each linear and the relu and after the branch, a scalar multiplier,
    a zero ``output`` layer; no norm). ``skip=False`` drops the identity (a plain deep net of
    the same blocks, ``branch="plain"`` only). ``init="he"``: branch layers He / gain 1 as in the
    module docstring, the stem and output layers gain 1, zero biases; ``"pytorch"``: torch's
    default (Var[w] = 1/(3n)) before the branch fix.

    >>> residual_mlp(8, 3, depth=2, width=16, norm="layer")(torch.zeros(5, 8)).shape
    torch.Size([5, 3])
    """
    check_int("n_in", n_in, minimum=1)
    check_int("n_out", n_out, minimum=1)
    check_int("depth", depth, minimum=1)
    check_int("width", width, minimum=1)
    check_choice("branch", branch, BRANCHES)
    check_choice("norm", norm, (None,) if branch == "fixup" else NORMS)
    check_choice("branch", branch, BRANCHES if skip else ("plain",))
    check_choice("init", init, INITS)
    layers: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Linear(n_in, width))
    for i in range(depth):
        layers[f"block{i + 1}"] = ResidualBlock(width, branch, norm, depth, skip, init)
    layers["output"] = nn.Linear(width, n_out)
    for name in ("stem", "output") if init == "he" else ():
        nn.init.kaiming_normal_(layers[name].weight, nonlinearity="linear")
        nn.init.zeros_(layers[name].bias)
    if branch == "fixup":
        nn.init.zeros_(layers["output"].weight)
        nn.init.zeros_(layers["output"].bias)
    return ResidualMLP(layers)


def _stream(model: ResidualMLP) -> dict[str, nn.Module]:
    if not isinstance(model, ResidualMLP):
        raise TypeError(f"model must be a ResidualMLP from residual_mlp, got {type(model).__name__}")
    return {name: m for name, m in model.named_children() if name != "output"}


def forward_variance(model: ResidualMLP, x: torch.Tensor) -> pd.DataFrame:
    r"""Mean square :math:`q_l` of the residual stream after the stem (block 0) and each block.

    Columns ``block, name, variance, relative`` (:math:`q_l / q_0`); the model is left unchanged
    (BatchNorm running statistics included).

    >>> df = forward_variance(residual_mlp(8, 3, depth=3, width=16, branch="zero"), torch.randn(32, 8))
    >>> df.relative.round(6).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    modules = _stream(model)
    with preserved_state(model), torch.no_grad(), capture(modules) as seen:
        model(x)
    q = [float(seen[name].double().pow(2).mean()) for name in modules]
    return pd.DataFrame({"block": range(len(q)), "name": list(modules), "variance": q,
                         "relative": np.array(q) / q[0]})


def predicted_stream_variance(depth: int, branch_gain2: float, *, var0: float = 1.0,
                              growth: str = "multiplicative") -> np.ndarray:
    r"""Predicted :math:`q_0 … q_L` of the residual stream.

    ``"multiplicative"`` (branch variance proportional to the stream, no norm):
    :math:`q_l = q_0 (1 + g^2)^l`; ``"additive"`` (a norm in the branch adds a fixed
    :math:`g^2` each block): :math:`q_l = q_0 + l\,g^2`.

    >>> predicted_stream_variance(3, 1.0).tolist()
    [1.0, 2.0, 4.0, 8.0]
    >>> predicted_stream_variance(2, 0.5, growth="additive").tolist()
    [1.0, 1.5, 2.0]
    """
    check_int("depth", depth, minimum=0)
    g2 = check_number("branch_gain2", branch_gain2, minimum=0.0)
    var0 = check_number("var0", var0, minimum=0.0)
    check_choice("growth", growth, ("multiplicative", "additive"))
    layers = np.arange(depth + 1, dtype=float)
    return var0 * (1 + g2) ** layers if growth == "multiplicative" else var0 + layers * g2


def backward_signal(model: ResidualMLP, x: torch.Tensor, y: torch.Tensor) -> pd.DataFrame:
    r"""Norm of :math:`\partial L/\partial x_l` (cross-entropy) for the stream after each block.

    Columns ``block, name, grad_norm, relative`` (over the last block's norm); ``.grad`` of the
    parameters is left untouched. The first/last ratio shows vanishing (≪ 1) or not (≈ 1+).

    >>> df = backward_signal(residual_mlp(8, 3, depth=3, width=16), torch.randn(32, 8), torch.zeros(32).long())
    >>> df.name.tolist(), bool((df.grad_norm > 0).all())
    (['stem', 'block1', 'block2', 'block3'], True)
    """
    modules = _stream(model)
    with preserved_state(model), capture(modules, detach=False) as seen:
        loss = F.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, [seen[name] for name in modules])
    norms = [float(g.double().norm()) for g in grads]
    return pd.DataFrame({"block": range(len(norms)), "name": list(modules), "grad_norm": norms,
                         "relative": np.array(norms) / norms[-1]})


def jacobian_singular_values(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""Singular values (descending) of the Jacobian :math:`\partial\,\text{block}(x)/\partial x` at one example.

    ``x`` is one input vector; for a residual block :math:`J = I + \partial F/\partial x`, so a
    small branch keeps every singular value near 1. (A BatchNorm block must be in eval mode.)

    >>> torch.manual_seed(0) and None
    >>> block = residual_mlp(4, 2, depth=1, width=6, branch="zero").block1
    >>> jacobian_singular_values(block, torch.randn(6))
    tensor([1., 1., 1., 1., 1., 1.])
    """
    if x.ndim != 1:
        raise ValueError(f"x must be one example (a 1-D tensor), got shape {tuple(x.shape)}")
    jac = torch.autograd.functional.jacobian(lambda v: block(v.unsqueeze(0)).squeeze(0), x)
    return torch.linalg.svdvals(jac.detach())


class TinyTransformer(nn.Module):
    """Token + learned position embeddings → ``layers`` encoder layers → (final LN if pre-LN) → ``head``.

    ``ln="post"``: ``LN(x + sublayer(x))`` (Vaswani et al. 2017); ``"pre"``:
    ``x + sublayer(LN(x))`` (``norm_first``). No dropout; feed-forward width ``4d``; no mask
    (every position sees the whole sequence). Output: logits ``(batch, length, vocab)``.

    >>> TinyTransformer(10, 16, 2, 2, max_len=8)(torch.zeros(3, 8).long()).shape
    torch.Size([3, 8, 10])
    """

    def __init__(self, vocab: int, d: int, heads: int, layers: int, *, ln: str = "pre", max_len: int = 64) -> None:
        super().__init__()
        for name, value in (("vocab", vocab), ("d", d), ("heads", heads), ("layers", layers), ("max_len", max_len)):
            check_int(name, value, minimum=1)
        check_choice("ln", ln, LN_POSITIONS)
        if d % heads:
            raise ValueError(f"heads={heads} is not valid; it must divide d={d}")
        self.ln = ln
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(max_len, d))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=ln == "pre")
            for _ in range(layers))
        self.final_norm = nn.LayerNorm(d) if ln == "pre" else nn.Identity()
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for layer in self.layers:
            h = layer(h)
        return self.head(self.final_norm(h))


def _tokens(n: int, length: int, vocab: int, seed: int) -> torch.Tensor:
    for name, value in (("n", n), ("length", length), ("vocab", vocab), ("seed", seed)):
        check_int(name, value, minimum=0 if name == "seed" else 1)
    return torch.randint(vocab, (n, length), generator=torch.Generator().manual_seed(seed))


def copy_task(n: int, length: int, vocab: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random sequences ``x`` and targets ``y = x`` (per position).

    >>> x, y = copy_task(2, 5, 10); bool((x == y).all())
    True
    """
    x = _tokens(n, length, vocab, seed)
    return x, x.clone()


def reverse_task(n: int, length: int, vocab: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random sequences and their reversal, ``y[:, i] = x[:, length - 1 - i]``.

    >>> reverse_task(1, 4, 10)[1].tolist() == reverse_task(1, 4, 10)[0].flip(1).tolist()
    True
    """
    x = _tokens(n, length, vocab, seed)
    return x, x.flip(1)


def sort_task(n: int, length: int, vocab: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random sequences and the same tokens sorted ascending.

    >>> x, y = sort_task(1, 6, 10); bool((y[:, 1:] >= y[:, :-1]).all())
    True
    """
    x = _tokens(n, length, vocab, seed)
    return x, x.sort(dim=1).values


def sequence_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every position: ``logits (B, T, V)``, ``y (B, T)`` (``fit(loss=...)``)."""
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


@torch.no_grad()
def sequence_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of positions whose arg-max token is the target."""
    return float((model(x).argmax(-1) == y).double().mean())


def layer_grad_norms(model: TinyTransformer, batch: tuple[torch.Tensor, torch.Tensor]) -> pd.DataFrame:
    """Gradient norm of each encoder layer's parameters (all together) for one batch, at the current weights.

    Xiong et al. (2020): at init, post-LN gradients grow towards the output layer, pre-LN
    ones are flat (or shrink). Columns ``layer`` (1 = nearest the input), ``grad_norm``; the
    model's ``.grad`` is left untouched.
    """
    x, y = batch
    params = [list(layer.parameters()) for layer in model.layers]
    grads = torch.autograd.grad(sequence_loss(model(x), y), [p for ps in params for p in ps])
    norms, i = [], 0
    for ps in params:
        norms.append(float(torch.sqrt(sum(g.double().pow(2).sum() for g in grads[i:i + len(ps)]))))
        i += len(ps)
    return pd.DataFrame({"layer": range(1, len(norms) + 1), "grad_norm": norms})


def warmup(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    r"""Linear warmup: the learning rate of step :math:`t` (from 1) is :math:`\eta\min(1, t/\text{steps})`.

    Call ``.step()`` after each optimizer step (Goyal et al. 2017; Liu et al. 2020).

    >>> opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = warmup(opt, 4); [opt.param_groups[0]["lr"]]
    [0.25]
    """
    check_int("steps", steps, minimum=1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: min(1.0, (k + 1) / steps))


class Warmup(Callback):
    """:func:`warmup` as a :mod:`helpers.train` callback: ``fit(..., callbacks=[Warmup(100)])``."""

    def __init__(self, steps: int) -> None:
        self.steps = check_int("steps", steps, minimum=1)

    def on_fit_start(self, run: Run) -> None:
        self.scheduler = warmup(run.optimizer, self.steps)

    def after_step(self, run: Run) -> None:
        self.scheduler.step()


def adam_first_updates(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], lr: float, steps: int,
                       warmup_steps: int = 1) -> pd.DataFrame:
    r"""Train ``model`` in place with Adam for ``steps`` steps on one batch; per step and layer, ‖ΔW‖/‖W‖.

    Liu et al. (2020): Adam's first updates are ≈ lr·sign(g) whatever the gradient's size
    (its variance estimate rests on few samples), so their relative size is large early;
    warmup (``warmup_steps`` > 1) shrinks them. Layers are ``model.layers`` (or the model's
    children). Columns ``step, layer, update_ratio``.
    """
    lr = check_number("lr", lr, minimum=0.0, strict=True)
    check_int("steps", steps, minimum=1)
    x, y = batch
    layers = [m for m in (getattr(model, "layers", None) or model.children()) if any(True for _ in m.parameters())]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = warmup(opt, warmup_steps)
    rows = []
    for step in range(1, steps + 1):
        before = [torch.cat([p.detach().flatten() for p in layer.parameters()]) for layer in layers]
        opt.zero_grad(set_to_none=True)
        sequence_loss(model(x), y).backward()
        opt.step()
        sched.step()
        for i, (layer, old) in enumerate(zip(layers, before)):
            rows.append((step, i + 1, update_ratio(old, torch.cat([p.detach().flatten() for p in layer.parameters()]))))
    return pd.DataFrame(rows, columns=["step", "layer", "update_ratio"])
