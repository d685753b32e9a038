r"""The size of the signal at each layer of a deep net, forward and backward, and the runs that show it.

Backpropagation multiplies the backward signal by one factor per layer. For an MLP with
:math:`z_l = W_l a_{l-1} + b_l` and :math:`a_l = \phi(z_l)`,

.. math::
    \frac{\partial L}{\partial a_{l-1}} = W_l^\top \operatorname{diag}\big(\phi'(z_l)\big)
    \frac{\partial L}{\partial a_l}, \qquad
    \frac{\partial L}{\partial W_l} = \frac{\partial L}{\partial z_l}\, a_{l-1}^\top,

so going down one layer multiplies the backward signal by about
:math:`\sqrt{n_\text{out}\operatorname{Var}[w]\,\mathbb{E}[\phi'(z)^2]}`: below one it vanishes,
above one it explodes (Bengio et al. 1994; Glorot & Bengio 2010). Used by the vanishing and
exploding gradients chapter:

- :func:`deep_net` — its deep MLP, initialized with a seed;
- :func:`layer_signals` — per linear layer ‖∂L/∂W‖, ‖∂L/∂z‖, the input's RMS, ‖∂L/∂a‖ and E[φ′²];
- :func:`grad_norms`, :class:`GradientFlows`, :func:`profiles`, :func:`table` — per-layer profiles
  over settings and seeds;
- :func:`layer_values`, :func:`climb`, :func:`outcome`, :func:`remedy_run`, :func:`remedy_table` —
  what a training run did;
- :func:`activation_curves`, :func:`scan`, :func:`clipped_steps` — slopes by autograd; a loss and
  its gradient along one parameter; one step clipped two ways (Pascanu et al. 2013).

Their figures are in :mod:`helpers.signals_plots`.

>>> net = deep_net("tanh", 0, depth=3)
>>> s = layer_signals(net, torch.randn(32, 64), torch.randint(0, 10, (32,)))
>>> list(s["index"]), bool(s["signal at input"].isna().iloc[0]), bool(s["E[φ′²]"].isna().iloc[-1])
([1, 2, 3, 4], True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from ._checks import check_choice, check_int, check_number
from .hooks import capture
from .init import init_
from .layers import activation_layers, check_module, weight_layers
from .models import MLP, activation, mlp
from .monitor import preserved_state, snapshot
from .stats import rms
from .train import FitResult, fit

NAN = float("nan")
#: The summed absolute gradient after each update, as the debugging diary (a Chinese blog post on how
#: activation functions affect classification) logged it before its loss read ``nan``; indexed by
#: updates before the nan.
DIARY_GRAD_SUMS = pd.Series([
    2570469.820984, 7628072.981415, 104128273.523438, 1003394306.0625, 26595445776.0, 82864352460.0,
    2485723173798.0, 14795568299674.0, 340887166279834.0, 1506918417760358.0, 1.1976798874317635e17,
    2.178111904646432e17, 9.045955479473226e18, 4.8279445897211806e19, 1.324136950814447e21,
    6.650622893084394e21, 1.3729770963654985e23, 1.5138212070373842e24], index=range(-18, 0))


def deep_net(act: str, seed: int, *, depth: int = 10, width: int = 64, n_in: int = 64, n_out: int = 10,
             scheme: str = "pytorch_default", residual: bool = False, **init_args) -> MLP:
    """``models.mlp`` with activation ``act``, initialized by ``init.init_(net, scheme, seed=seed, **init_args)``.

    The defaults are the chapter's: 10 hidden layers of 64 units, the digits' 64 inputs and 10 classes.
    """
    net = mlp(n_in, n_out, depth=depth, width=width, activation=act, residual=residual)
    return init_(net, scheme, seed=seed, **init_args)


def layer_signals(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> pd.DataFrame:
    """One forward and backward pass (cross-entropy) on ``(x, y)``; one row per linear layer l.

    Columns: ``index`` (1 = first, last = output), ``weight gradient`` ‖∂L/∂W_l‖, ``backward signal``
    ‖∂L/∂z_l‖ at its output, ``input RMS`` of a_{l−1}, ``signal at input`` ‖∂L/∂a_{l−1}‖ (NaN where the
    input is the data) and ``E[φ′²]``, the mean squared slope of the net's (first) activation at
    z_l (NaN for the last layer). The layers' inputs and outputs are captured with the graph
    (``hooks.capture(..., detach=False)``) and keep their gradients (``retain_grad``); the net is
    left as it was, gradients included (``monitor.preserved_state``).
    """
    linears = dict(weight_layers(check_module("net", net)))
    acts = activation_layers(net)
    _batch(x, y)
    if not linears or not acts:
        raise ValueError("net needs linear layers and an activation module to measure signals through")
    with preserved_state(net):
        net.zero_grad(set_to_none=True)
        with capture(linears, what="input", detach=False) as ins, capture(linears, detach=False) as outs:
            logits = net(x)
        for tensor in [*ins.values(), *outs.values()]:
            if tensor.requires_grad:
                tensor.retain_grad()
        nn.functional.cross_entropy(logits, y).backward()
        weight_grads = [float(m.weight.grad.norm()) for m in linears.values()]
    slope_sq = []
    for name in list(linears)[:-1]:
        z = outs[name].detach().requires_grad_(True)
        (d,) = torch.autograd.grad(acts[0][1](z).sum(), z)
        slope_sq.append(float(d.pow(2).mean()))
    return pd.DataFrame({
        "index": range(1, len(linears) + 1), "weight gradient": weight_grads,
        "backward signal": [float(outs[n].grad.norm()) for n in linears],
        "input RMS": [rms(ins[n]) for n in linears],
        "signal at input": [NAN if ins[n].grad is None else float(ins[n].grad.norm()) for n in linears],
        "E[φ′²]": [*slope_sq, NAN]})


def _batch(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor batch, got {type(value).__name__}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}; give one label per example")
    return x


def _where(frame: pd.DataFrame, quantity: str, name: str = "frame") -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame) or "quantity" not in frame:
        raise TypeError(f"{name} must be a tidy DataFrame with a 'quantity' column")
    check_choice("quantity", quantity, sorted(frame.quantity.unique()))
    return frame[frame.quantity == quantity]


def grad_norms(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> pd.DataFrame:
    """The ``grad_norm`` rows of ``monitor.snapshot(net, x, y)`` (the net left unchanged), by layer index."""
    stats, _ = snapshot(net, _batch(x, y), y)
    return stats[stats.quantity == "grad_norm"].sort_values("index")


class GradientFlows:
    """Weight-gradient norms per layer (:func:`grad_norms`) of fresh nets on one batch, each setting
    computed once: ``deep_net(activation, seed, depth=depth, scale=init_scale)``, PyTorch's default
    init times ``init_scale``. :meth:`figure` draws one setting, for an explorer.

    >>> flows = GradientFlows(torch.randn(16, 64), torch.randint(0, 10, (16,)))
    >>> len(flows.grads(3, "tanh", 1.0)), flows.first_to_last(3, "tanh", 1.0) > 0
    (4, True)
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> None:
        self.x, self.y, self.seed = _batch(x, y), y, check_int("seed", seed, minimum=0)
        self.computed: dict[tuple, pd.DataFrame] = {}

    def grads(self, depth: int, activation: str, init_scale: float) -> pd.DataFrame:
        """The ``grad_norm`` rows of one setting, first layer to output layer."""
        key = (depth, activation, init_scale)
        if key not in self.computed:
            net = deep_net(activation, self.seed, depth=depth, scale=init_scale)
            self.computed[key] = grad_norms(net, self.x, self.y)
        return self.computed[key]

    def first_to_last(self, depth: int, activation: str, init_scale: float) -> float:
        """‖∇W₁‖ / ‖∇W_out‖ of one setting."""
        g = self.grads(depth, activation, init_scale).value
        return float(g.iloc[0] / g.iloc[-1])

    def figure(self, depth: int, activation: str, init_scale: float):
        """The setting's gradient norm per layer (``signals_plots.plot_flow``), its ratio in the title."""
        from .signals_plots import plot_flow

        ratio = self.first_to_last(depth, activation, init_scale)
        title = f"{activation}, {depth} layers, scale {init_scale:g}\nfirst / last = {ratio:.1e}"
        return plot_flow(self.grads(depth, activation, init_scale), title)


def scan(loss_fn: Callable[..., torch.Tensor], w: torch.Tensor, b: torch.Tensor) -> pd.DataFrame:
    """``loss_fn(w, b)`` and ``|∂L/∂b|`` (autograd) along a grid ``b`` (float64): columns b, loss, ``|dL/db|``.

    >>> scan(lambda w, b: w * b**2, torch.tensor(1.0), torch.tensor([1.0, 2.0]))["|dL/db|"].tolist()
    [2.0, 4.0]
    """
    b = b.detach().to(torch.float64).requires_grad_(True)
    loss = loss_fn(w, b)
    (grad,) = torch.autograd.grad(loss.sum(), b)
    return pd.DataFrame({"b": b.detach().numpy(), "loss": loss.detach().numpy(), "|dL/db|": grad.abs().numpy()})


def profiles(settings: Mapping, seeds: Iterable[int], x: torch.Tensor, y: torch.Tensor, *,
             by: str = "init", **net_args) -> pd.DataFrame:
    """Per-layer profiles at initialization of ``deep_net(seed=seed, **net_args, **settings[label])``.

    For every label and seed: ``grad_norm`` and ``frac_saturated`` (``monitor.snapshot``) and
    ``backward_signal``, ‖∂L/∂a_l‖ at hidden layer l's output (``index`` l). Tidy: the label in
    column ``by``, then seed, index, quantity, value.
    """
    if not isinstance(settings, Mapping) or not all(isinstance(a, Mapping) for a in settings.values()):
        raise TypeError("settings must map a label to a dict of deep_net arguments, e.g. {'tanh': {'act': 'tanh'}}")
    _batch(x, y)
    frames = []
    for label, args in settings.items():
        for seed in seeds:
            net = deep_net(seed=seed, **{**net_args, **args})
            snap, _ = snapshot(net, x, y)
            sig = layer_signals(net, x, y).iloc[1:]
            back = pd.DataFrame({"index": sig["index"] - 1, "quantity": "backward_signal",
                                 "value": sig["signal at input"]})
            frames += [f.assign(**{by: label}, seed=seed)
                       for f in (snap[snap.quantity.isin(["grad_norm", "frac_saturated"])], back)]
    return pd.concat(frames, ignore_index=True)


def table(frame: pd.DataFrame, quantity: str, *, rows: str = "seed", **where) -> pd.DataFrame:
    """``rows`` (seeds) × layer index of one ``quantity`` of a tidy frame, keeping the rows where
    column == value for each ``column=value`` given.

    >>> t = table(pd.DataFrame({"seed": [0, 0], "index": [1, 2], "quantity": "q", "value": [3.0, 4.0]}), "q")
    >>> t.loc[0].tolist()
    [3.0, 4.0]
    """
    frame = _where(frame, quantity)
    for column, value in where.items():
        check_choice("column", column, list(frame.columns))
        frame = frame[frame[column] == value]
    return frame.pivot_table(index=rows, columns="index", values="value")


def layer_values(run: FitResult, quantity: str, how: str = "median") -> pd.Series:
    """One quantity of a run's monitor per layer index: its median over the run, or its ``"last"`` value."""
    check_choice("how", how, ("median", "last"))
    if run.monitor is None:
        raise ValueError("run has no monitor: fit it with monitor=...")
    s = _where(run.monitor.to_frame(), quantity, "the run's monitor record")
    if how == "last":
        return s[s.step == s.step.max()].set_index("index").value
    return s.groupby("index").value.median()


def climb(run: FitResult) -> dict[str, float]:
    """How the logged gradient sum grew: from its lowest to its last value, and its largest one-step jump."""
    g = run.curve("grad_abs_sum").value
    return {"growth": g.iloc[-1] / g.min(), "jump": (g / g.shift()).max()}


def outcome(run: FitResult) -> dict:
    """Status, the step whose loss was nan, and (for a run that did not diverge) the lowest batch loss
    of the run and the final training loss."""
    ok = run.status == "ok"
    return {"status": run.status, "nan at step": NAN if ok else float(run.diverged_step),
            "lowest train loss": run.curve("loss").value.min() if ok else NAN,
            "final train loss": run.final("eval_loss", "train") if ok else NAN}


@torch.no_grad()
def wrong_predictions(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Where the cross-entropy comes from: the share of it on wrong predictions, the mean loss of a wrong
    and of a right one, and the median confidence (top softmax probability) of the wrong ones."""
    logits = net(x)
    loss = nn.functional.cross_entropy(logits, y, reduction="none")
    wrong = logits.argmax(1) != y
    return {"loss share of wrong predictions": float(loss[wrong].sum() / loss.sum()),
            "loss per wrong prediction": float(loss[wrong].mean()),
            "loss per right prediction": float(loss[~wrong].mean()),
            "confidence of wrong predictions": float(logits[wrong].softmax(1).max(1).values.median())}


def remedy_run(net: nn.Module, data, *, seed: int, steps: int = 150, lr: float = 0.1, batch_size: int = 64,
               **fit_args) -> dict:
    """Train ``net`` with SGD (``train.fit``, gradient norms monitored every 10 steps) and summarize.

    Returns the final training loss and test accuracy (NaN if the run diverged), the median first-layer
    gradient norm, the training loss before the first step, the nan step and :func:`wrong_predictions`.
    """
    r = fit(net, data, steps=steps, batch_size=batch_size, lr=lr, seed=seed, eval_every=steps,
            monitor={"every": 10, "activations": False, "updates": False}, **fit_args)
    ok = r.status == "ok"  # a diverged run's last evaluation is the one before training: meaningless
    return {"diverged": not ok, "final train loss": r.final("eval_loss", "train") if ok else NAN,
            "test accuracy": r.final("accuracy", "test") if ok else NAN,
            "first-layer grad norm (median)": layer_values(r, "grad_norm")[1],
            "initial train loss": r.curve("eval_loss").value.iloc[0],
            "nan at step": outcome(r)["nan at step"], **wrong_predictions(net, data.x_train, data.y_train)}


def remedy_table(runs: pd.DataFrame, names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per remedy (rows of :func:`remedy_run` with ``remedy`` and ``seed`` columns): median final
    training loss, mean test accuracy, median first-layer gradient norm, seeds that diverged."""
    table = runs.groupby("remedy", sort=False).agg(**{
        "train loss": ("final train loss", "median"), "test acc.": ("test accuracy", "mean"),
        "∇W₁ norm": ("first-layer grad norm (median)", "median"), "diverged": ("diverged", "sum")})
    table["diverged"] = table["diverged"].map(lambda n: f"{n} of {runs.seed.nunique()}")
    return table.rename(index=dict(names or {}))


def activation_curves(names: Sequence[str], z: torch.Tensor | None = None) -> pd.DataFrame:
    """Each activation and its derivative (by ``torch.autograd.grad``) on ``z`` (default: 1,201 points
    in [−6, 6]). Tidy: z, activation, value, derivative.

    >>> activation_curves(["relu"], torch.tensor([-1.0, 2.0])).derivative.tolist()
    [0.0, 1.0]
    """
    z = (torch.linspace(-6, 6, 1201) if z is None else z.detach()).requires_grad_(True)
    frames = []
    for name in names:
        out = activation(name)(z)
        (slope,) = torch.autograd.grad(out.sum(), z)
        frames.append(pd.DataFrame({"z": z.detach().numpy(), "activation": name,
                                    "value": out.detach().numpy(), "derivative": slope.numpy()}))
    return pd.concat(frames, ignore_index=True)


def clipped_steps(loss_fn: Callable[..., torch.Tensor], point: Sequence[float], *, lr: float = 0.1,
                  threshold: float = 1.0, names: Sequence[str] = ("w", "b")) -> tuple[torch.Tensor, pd.DataFrame]:
    """One gradient-descent step of ``loss_fn(*params)`` from ``point`` (float64): unclipped, with the
    gradient's norm clipped to ``threshold`` (the vector rescaled) and each component clipped to
    ±``threshold`` (Pascanu, Mikolov & Bengio 2013). Returns the gradient and one row per step: the
    change of each parameter, the step length, its cosine with the gradient, the loss before and after.

    >>> _, steps = clipped_steps(lambda w, b: 10 * w**2 + b**2, (1.0, 1.0), lr=0.01)
    >>> steps["cosine with gradient"].round(3).tolist()
    [1.0, 1.0, 0.774]
    """
    check_number("threshold", threshold, minimum=0.0, strict=True)
    check_number("lr", lr, minimum=0.0, strict=True)
    if len(names) != len(point):
        raise ValueError(f"names={tuple(names)!r} must name each of the {len(point)} coordinates of point")
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in point]
    before = loss_fn(*params)
    grad = torch.stack(torch.autograd.grad(before, params)).detach()
    steps = {"no clipping": grad, f"clip norm to {threshold:g}": grad * min(1.0, threshold / float(grad.norm())),
             f"clip value to {threshold:g}": grad.clamp(-threshold, threshold)}
    rows = []
    for how, g in steps.items():
        after = [p - lr * float(gi) for p, gi in zip(point, g)]
        rows.append({"step": how, **{f"Δ{n}": a - p for n, p, a in zip(names, point, after)},
                     "step length": lr * float(g.norm()),
                     "cosine with gradient": float(g @ grad / (g.norm() * grad.norm())),
                     "loss before": before.item(),
                     "loss after": float(loss_fn(*(torch.tensor(a, dtype=torch.float64) for a in after)))})
    return grad, pd.DataFrame(rows).set_index("step")
