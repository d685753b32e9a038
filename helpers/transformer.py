r"""Transformers that do or do not train: LayerNorm placement, warmup, and Adam's first steps.

A tiny encoder (:class:`TinyTransformer`, PyTorch's own ``nn.TransformerEncoderLayer``) on
synthetic sequence tasks that need no download (copy, reverse, sort). Post-LN puts the norm after
the residual sum, :math:`x_{l+1} = \text{LN}(x_l + F(x_l))` (Vaswani et al. 2017); pre-LN inside
the branch, :math:`x_{l+1} = x_l + F(\text{LN}(x_l))`. Xiong et al. (2020) show that post-LN's
gradients near the output are large at initialization, so it needs a learning-rate warmup, while
pre-LN does not. Liu et al. (2020) trace the need for warmup to Adam's first updates: with few
gradient samples its step is :math:`\approx \eta\,\text{sign}(g)` for every weight, whatever
the gradient's size.

>>> model = TinyTransformer(vocab=10, d=16, heads=2, layers=2, max_len=8)
>>> x, y = reverse_task(4, 8, 10)
>>> model(x).shape
torch.Size([4, 8, 10])
>>> 1.5 < float(sequence_loss(model(x), y).detach()) < 4  # about ln 10 = 2.3 at initialization
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_int, check_number
from .monitor import preserved_state
from .seed import seeded
from .stats import update_ratio
from .train import Callback, Every, Run, fit

LN_POSITIONS = ("pre", "post")


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
        self.pos = nn.Embedding(max_len, d)  # learned positions, a lookup table as in GPT-2
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=ln == "pre")
            for _ in range(layers))
        self.final_norm = nn.LayerNorm(d) if ln == "pre" else nn.Identity()
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
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


def ffn_gradient_profiles(depths: list[int], seeds: range, *, vocab: int = 12, length: int = 12,
                          d: int = 32, heads: int = 4, batch: int = 64) -> pd.DataFrame:
    r"""Xiong et al.'s measurement: ‖∂L/∂W₂‖ of each layer's feed-forward output weight at initialization.

    For pre- and post-LN :class:`TinyTransformer` of each depth and seed, on one batch of
    :func:`reverse_task`. Columns ``ln, depth, seed, layer`` (1 = nearest the input),
    ``grad_norm``, ``relative`` (over the last layer's).

    >>> df = ffn_gradient_profiles([2], range(1), d=8, heads=2, batch=4)
    >>> df[["ln", "layer"]].values.tolist()
    [['pre', 1], ['pre', 2], ['post', 1], ['post', 2]]
    """
    rows = []
    for depth in depths:
        check_int("depth", depth, minimum=1)
        for ln in LN_POSITIONS:
            for seed in seeds:
                with seeded(seed):
                    model = TinyTransformer(vocab, d, heads, depth, ln=ln, max_len=length)
                x, y = reverse_task(batch, length, vocab, seed=seed)
                weights = [layer.linear2.weight for layer in model.layers]
                grads = torch.autograd.grad(sequence_loss(model(x), y), weights)
                norms = [float(g.double().norm()) for g in grads]
                rows += [(ln, depth, seed, i + 1, n, n / norms[-1]) for i, n in enumerate(norms)]
    return pd.DataFrame(rows, columns=["ln", "depth", "seed", "layer", "grad_norm", "relative"])


@dataclass
class SequenceRuns:
    """What :func:`train_sequences` returns: ``curves`` (``setting, seed, step, loss``), ``finals``
    (``setting, seed, status, test_accuracy``), the trained ``models`` by ``(setting, seed)``, and
    the training ``data`` ``(x, y)``."""

    curves: pd.DataFrame
    finals: pd.DataFrame
    models: dict[tuple[str, int], nn.Module]
    data: tuple[torch.Tensor, torch.Tensor]


def train_sequences(settings: dict[str, dict], seeds: range, *, task: Callable | None = None, vocab: int = 12,
                    length: int = 12, d: int = 32, heads: int = 4, layers: int = 6, steps: int = 150,
                    batch_size: int = 32, lr: float = 1e-2, record_every: int = 5) -> SequenceRuns:
    """Train a :class:`TinyTransformer` per named setting and seed with Adam on a synthetic task.

    ``settings``: name → ``{"ln": "pre"|"post", "warmup": steps (optional), "optimizer":
    "adam"|"radam" (optional), "lr": (optional)}``; 2,048 training sequences, a batch of
    ``batch_size`` per step. Returns :class:`SequenceRuns`: the training loss every
    ``record_every`` steps, and per run the accuracy on 512 held-out sequences (NaN if the run
    diverged) and the model.
    """
    task = reverse_task if task is None else task
    x, y = task(2048, length, vocab, seed=10_000)
    x_test, y_test = task(512, length, vocab, seed=10_001)
    curves, finals, models = [], [], {}
    for name, setting in settings.items():
        check_choice("ln", setting.get("ln"), LN_POSITIONS)
        optimizer = check_choice("optimizer", setting.get("optimizer", "adam"), ("adam", "radam"))
        run_lr = setting.get("lr", lr)
        make = "adam" if optimizer == "adam" else (lambda params, lr=run_lr: torch.optim.RAdam(params, lr=lr))
        for seed in seeds:
            seen: list[tuple] = []
            callbacks = [Every(record_every, lambda run, seen=seen, tag=(name, seed):
                               seen.append((*tag, run.step, float(run.loss.detach()))))]
            if setting.get("warmup", 1) > 1:
                callbacks.insert(0, Warmup(setting["warmup"]))
            with seeded(seed):
                model = TinyTransformer(vocab, d, heads, layers, ln=setting["ln"], max_len=length)
                result = fit(model, (x, y), steps=steps, batch_size=batch_size, lr=run_lr, optimizer=make,
                             loss=sequence_loss, eval_every=None, seed=seed, progress=False, callbacks=callbacks)
            ok = result.status == "ok"
            curves += seen
            models[name, seed] = model
            finals.append((name, seed, result.status, sequence_accuracy(model, x_test, y_test) if ok else math.nan))
    return SequenceRuns(pd.DataFrame(curves, columns=["setting", "seed", "step", "loss"]),
                        pd.DataFrame(finals, columns=["setting", "seed", "status", "test_accuracy"]), models, (x, y))


def adam_first_step_sizes(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], lr: float) -> torch.Tensor:
    r"""``|Δw| / lr`` for every parameter entry after one Adam step (``model`` is left unchanged).

    Adam's first step is :math:`-\eta\,g/(|g| + \epsilon) \approx -\eta\,\text{sign}(g)` (Kingma &
    Ba 2015, with :math:`\hat m_1 = g`, :math:`\hat v_1 = g^2`): every weight whose gradient is
    not tiny moves by the learning rate, however small its gradient (Liu et al. 2020).

    >>> sizes = adam_first_step_sizes(TinyTransformer(10, 8, 2, 1, max_len=4), reverse_task(4, 4, 10), 0.1)
    >>> round(float(sizes.median()), 2)  # the typical weight moves by the learning rate
    1.0
    """
    lr = check_number("lr", lr, minimum=0.0, strict=True)
    x, y = batch
    if x.dtype != torch.long or x.ndim != 2:
        raise ValueError("batch must be token sequences (an integer tensor of shape (batch, length)), "
                         f"got {x.dtype} of shape {tuple(x.shape)}")
    with preserved_state(model):
        before = [p.detach().clone() for p in model.parameters()]
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        optimizer.zero_grad(set_to_none=True)
        sequence_loss(model(x), y).backward()
        optimizer.step()
        sizes = torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(model.parameters(), before)]) / lr
    return sizes


def first_step_output_change(layers: int, seeds: range, lr: float, *, vocab: int = 12, length: int = 12,
                             d: int = 32, heads: int = 4, batch: int = 32) -> pd.DataFrame:
    r"""How far one Adam step moves a fresh :class:`TinyTransformer`'s logits, pre- against post-LN.

    Per layout and seed: one step of ``torch.optim.Adam(lr)`` on one batch of :func:`reverse_task`
    (seed 0), then the RMS of the change of the logits on that batch. Liu et al. (2020b, Admin)
    argue that post-LN amplifies the effect of each update on the output. Columns ``ln, seed,
    change``.

    >>> df = first_step_output_change(1, range(1), 1e-3, d=8, heads=2, batch=4)
    >>> df.ln.tolist(), bool((df.change > 0).all())
    (['pre', 'post'], True)
    """
    check_int("layers", layers, minimum=1)
    lr = check_number("lr", lr, minimum=0.0, strict=True)
    x, y = reverse_task(batch, length, vocab, seed=0)
    rows = []
    for ln in LN_POSITIONS:
        for seed in seeds:
            with seeded(seed):
                model = TinyTransformer(vocab, d, heads, layers, ln=ln, max_len=length)
            with torch.no_grad():
                before = model(x)
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            sequence_loss(model(x), y).backward()
            optimizer.step()
            with torch.no_grad():
                rows.append((ln, seed, float((model(x) - before).pow(2).mean().sqrt())))
    return pd.DataFrame(rows, columns=["ln", "seed", "change"])
