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

The transformer half of the chapter is :mod:`helpers.transformer`.

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
from .seed import seeded
from .train import evaluate, fit

BRANCHES = ("plain", "scaled", "zero", "rezero", "fixup")
NORMS = (None, "batch", "layer")
INITS = ("he", "pytorch")


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
    norms = np.array([float(g.double().norm()) for g in grads])
    with np.errstate(invalid="ignore", divide="ignore"):  # an overflowed net: inf / inf is NaN
        relative = norms / norms[-1]
    return pd.DataFrame({"block": range(len(norms)), "name": list(modules), "grad_norm": norms,
                         "relative": relative})


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


def signal_profiles(nets: dict[str, dict], x: torch.Tensor, y: torch.Tensor, seeds: range) -> pd.DataFrame:
    """The stream's mean square (:func:`forward_variance`) and backward signal (:func:`backward_signal`)
    after each block, for each named net (``name → residual_mlp keyword arguments``) and seed.

    Columns ``net, seed, block, variance, grad_norm, forward`` (``variance / q₀``), ``backward``
    (``grad_norm`` over the last block's).

    >>> df = signal_profiles({"zero": dict(n_in=8, n_out=3, depth=2, width=16, branch="zero")},
    ...                      torch.randn(16, 8), torch.zeros(16).long(), range(2))
    >>> df.forward.round(6).unique().tolist(), len(df)
    ([1.0], 6)
    """
    rows = []
    for name, kwargs in nets.items():
        for seed in seeds:
            with seeded(seed):
                model = residual_mlp(**kwargs)
            fwd = forward_variance(model, x)
            bwd = backward_signal(model, x, y)
            rows.append(pd.DataFrame({"net": name, "seed": seed, "block": fwd.block, "variance": fwd.variance,
                                      "grad_norm": bwd.grad_norm, "forward": fwd.relative,
                                      "backward": bwd.relative}))
    return pd.concat(rows, ignore_index=True)


def block_spectra(nets: dict[str, dict], seeds: range, block: int = 1) -> pd.DataFrame:
    """Singular values of block ``block``'s input-output Jacobian at one random input, per net and seed.

    Columns ``net, seed, singular_value`` (one row per value); ``nets`` as in :func:`signal_profiles`.
    """
    rows = []
    for name, kwargs in nets.items():
        for seed in seeds:
            with seeded(seed):
                model = residual_mlp(**kwargs)
            x = torch.randn(kwargs["width"], generator=torch.Generator().manual_seed(seed))
            values = jacobian_singular_values(model.blocks()[block - 1], x)
            rows.append(pd.DataFrame({"net": name, "seed": seed, "singular_value": values.numpy()}))
    return pd.concat(rows, ignore_index=True)


def train_nets(nets: dict[str, dict], data, seeds: range, **fit_kwargs) -> pd.DataFrame:
    """Train each named net (``name → residual_mlp keyword arguments``) from each seed with
    :func:`helpers.train.fit`; one row per run: ``net, seed, status, final_loss, test_accuracy``.

    A diverged run has ``test_accuracy`` NaN. Torch's global generator is left as it was.
    """
    rows = []
    for name, kwargs in nets.items():
        for seed in seeds:
            with seeded(seed):
                model = residual_mlp(**kwargs)
                result = fit(model, data, seed=seed, eval_every=None, progress=False, **fit_kwargs)
            ok = result.status == "ok"
            test = evaluate(model, data.x_test, data.y_test) if ok else {"accuracy": math.nan}
            rows.append((name, seed, result.status, float(result.curve("loss").value.iloc[-1]) if ok else math.nan,
                         test["accuracy"]))
    return pd.DataFrame(rows, columns=["net", "seed", "status", "final_loss", "test_accuracy"])


def first_step_change(nets: dict[str, dict], x: torch.Tensor, y: torch.Tensor, lr: float, seeds: range) -> pd.DataFrame:
    r"""How much one SGD step on ``(x, y)`` moves each net's outputs: the RMS of :math:`f_1(x) - f_0(x)`.

    ``nets`` as in :func:`signal_profiles`; one row per net and seed: ``net, seed, change`` (the
    logits' change, absolute: a Fixup net's logits start at exactly zero). A
    zero-initialised last branch layer lets every block learn at once in the first step; ReZero
    lets only its scalar move; Fixup shrinks the inner layers by :math:`L^{-1/2}`.

    >>> df = first_step_change({"zero": dict(n_in=4, n_out=3, depth=2, width=8, branch="zero")},
    ...                        torch.randn(16, 4), torch.zeros(16).long(), 0.1, range(1))
    >>> bool(df.change.iloc[0] > 0)
    True
    """
    lr = check_number("lr", lr, minimum=0.0, strict=True)
    rows = []
    for name, kwargs in nets.items():
        for seed in seeds:
            with seeded(seed):
                model = residual_mlp(**kwargs)
            before = model(x).detach()
            optimizer = torch.optim.SGD(model.parameters(), lr=lr)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            with torch.no_grad():
                rows.append((name, seed, float((model(x) - before).pow(2).mean().sqrt())))
    return pd.DataFrame(rows, columns=["net", "seed", "change"])
