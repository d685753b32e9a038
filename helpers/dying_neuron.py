r"""One ReLU neuron :math:`\mathrm{ReLU}(wx)` fitted to :math:`\mathrm{ReLU}(x)`: the dead-ReLU
chapter's tables and sentences about it.

The runs come from :func:`helpers.dying.neuron_paths` (a path of w, ``(steps + 1, starts,
seeds)``, and each step's batch curvature c); this module reads them:

- :func:`loss_frame`, :func:`closed_form_gaps` — the loss against w, closed form and Monte Carlo;
- :func:`seeds_crossed`, :func:`optimizer_table`, :func:`verdicts`, :func:`amsgrad_sentence` —
  which optimizer gets across the kink at 0, against the single-ReLU answer's claims;
- :func:`jump_table`, :func:`sign_map_error`, :func:`jump_sentence` — exercise 1, large steps
  that jump over the dead zone.

>>> path = torch.tensor([[[-1.0, -1.0]], [[0.5, -0.5]]]).transpose(1, 2)   # 2 steps, 2 starts, 1 seed
>>> seeds_crossed(path)
[1, 0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd
import torch

from ._checks import check_int, check_number
from .dying import neuron_loss, neuron_loss_closed, weight_text


def loss_frame(ws: Sequence[float], slope: float = 0.3, mc_every: int = 8) -> pd.DataFrame:
    """The loss against ``w``: closed forms for ReLU and LeakyReLU(``slope``) at every ``w`` of
    ``ws``, and a Monte Carlo estimate with positive inputs only at every ``mc_every``-th.
    Columns w, loss, neuron."""
    check_number("slope", slope, minimum=0.0)
    rows = [{"w": w, "loss": float(neuron_loss_closed(w, s)), "neuron": name}
            for w in ws for s, name in ((0.0, "ReLU"), (slope, f"LeakyReLU({slope:g})"))]
    rows += [{"w": w, "loss": neuron_loss(w, positive_only=True), "neuron": "ReLU, inputs > 0 only"}
             for w in ws[::check_int("mc_every", mc_every, minimum=1)]]
    return pd.DataFrame(rows)


def closed_form_gaps(ws: Iterable[float] = (-2.0, -0.5, 0.5, 2.0), slopes: Iterable[float] = (0.0, 0.3)) -> list[float]:
    """``|Monte Carlo − closed form|`` of the loss at every ``w`` and slope."""
    slopes = list(slopes)
    return [abs(neuron_loss(w, s) - float(neuron_loss_closed(w, s))) for w in ws for s in slopes]


def seeds_crossed(path: torch.Tensor) -> list[int]:
    """Per start (axis 1 of a path ``(steps + 1, starts, seeds)``): how many seeds ever had w > 0."""
    return [int((path[:, i] > 0).any(0).sum()) for i in range(path.shape[1])]


def optimizer_table(paths: Mapping[str, torch.Tensor], starts: Sequence[float] = (-10.0, -1.0)) -> pd.DataFrame:
    """One row per optimizer (``paths``: name → path) and start: the final w (mean over seeds), its
    spread over seeds, and the seeds that crossed 0."""
    rows = []
    for name, p in paths.items():
        e, crossed, n = p[-1], seeds_crossed(p), p.shape[-1]
        rows += [{"optimizer": name, "start w0": f"{w0:g}", f"final w (mean of {n} seeds)": float(e[i].mean()),
                  "spread over seeds (max − min)": float(e[i].max() - e[i].min()),
                  f"crossed 0 (seeds of {n})": crossed[i]} for i, w0 in enumerate(starts)]
    return pd.DataFrame(rows)


def verdicts(sgd: torch.Tensor, mom: torch.Tensor, adam: torch.Tensor, ams: torch.Tensor,
             leaky: torch.Tensor, slope: float = 0.3) -> pd.DataFrame:
    """The single-ReLU answer's claims against the final w of each optimizer, ``(starts, seeds)``
    with starts −10 and −1: plain SGD, momentum, Adam, AMSGrad and the LeakyReLU(``slope``) neuron."""
    leaky_verdict = (f"it crosses 0, but settles at {float(leaky.mean()):.3f} = 1/(1 + {slope:g}²), the "
                     "LeakyReLU optimum, not 1")
    return pd.DataFrame([
        ("from w0 = −10, plain SGD gets stuck at w ≈ 0", "yes", f"final w ≈ {weight_text(float(sgd[0].mean()))}"),
        (f"LeakyReLU({slope:g}) moves w to 1, the optimum", "partly", leaky_verdict),
        ("from −10, Adam and AMSGrad do not help, and Adam is slower than SGD", "yes",
         f"final w ≈ {float(adam[0].mean()):.2f} (Adam), {float(ams[0].mean()):.2f} (AMSGrad)"),
        ("from −10, SGD with momentum does not help", "no",
         f"momentum overshoots 0 and reaches w = {float(mom[0].mean()):.3f} in every seed"),
        ("from −1, Adam (lr 0.01) and momentum (lr 0.01) reach w = 1", "yes",
         f"final w = {float(adam[1].mean()):.3f} (Adam), {float(mom[1].mean()):.3f} (momentum)"),
        ("from −1, even plain SGD (lr 0.01) reaches w = 1", "no",
         f"final w ≈ {weight_text(float(sgd[1].mean()))}: stuck"),
    ], columns=["claim in the single-ReLU answer", "reproduces?", f"measured (mean of {sgd.shape[-1]} seeds)"])


def amsgrad_sentence(path: torch.Tensor) -> str:
    """Why AMSGrad (``path`` from starts −10 and −1) never gets across from −10 but does from −1."""
    crossed, n = seeds_crossed(path), path.shape[-1]
    return (
        "AMSGrad keeps the largest second-moment estimate it has seen, so from −10, where the first "
        "gradients are large, its steps shrink in proportion to the gradient as w rises: in the "
        f"{len(path) - 1:,} steps run it never gets across (highest w reached by any seed: "
        f"{float(path[:, 0].max()):.2f}; final w {float(path[-1, 0].mean()):.2f}, mean of {n} seeds). "
        f"From −1 it does: it crosses 0 in {crossed[1]} of {n} seeds and ends at "
        f"{float(path[-1, 1].mean()):.3f}. Whether an optimizer \"escapes\" a dead region this way depends "
        "on these details, which is why the post's observations differ from ours: the fix that does "
        "not depend on luck is an activation whose slope is never 0.")


def jump_table(final_w: Mapping[float, torch.Tensor], tol: float = 0.01) -> pd.DataFrame:
    """Per learning rate (``final_w``: lr → final w per seed): seeds within ``tol`` of w = 1 and
    seeds still below 0, as "k/n"."""
    check_number("tol", tol, minimum=0.0, strict=True)
    return pd.DataFrame([{"learning rate": f"{lr:g}", "seeds at w = 1": f"{int(((w - 1).abs() < tol).sum())}/{len(w)}",
                          "seeds still below 0": f"{int((w < 0).sum())}/{len(w)}"} for lr, w in final_w.items()])


def sign_map_error(path: torch.Tensor, curvature: torch.Tensor, lr: float, steps: int = 5) -> torch.Tensor:
    """Relative error of the map w → (1 − lr·c)·w over the first ``steps`` steps of a one-start
    :func:`~helpers.dying.neuron_paths` run, at the steps that end with w < 0."""
    check_number("lr", lr, minimum=0.0, strict=True)
    p, c = path[:, 0], curvature[:, 0]
    k = check_int("steps", steps, minimum=1)
    predicted = (1 - lr * c[:k]) * p[:k]
    return ((p[1:k + 1] - predicted) / predicted)[p[1:k + 1] < 0].abs()


def _joined(values: Iterable, fmt: str = ".0f") -> str:
    """ "3 and 17" """
    return " and ".join(format(v, fmt) for v in values)


def jump_sentence(flips: pd.DataFrame, batch: int = 1000, lr: float = 0.9) -> str:
    """Exercise 1's answer from :func:`~helpers.dying.sign_flips` at ``lr`` (batches of ``batch``):
    the seeds that escape cross 0 at their first flipping batch; the one that stays had stopped moving."""
    check_int("batch", batch, minimum=2)
    c_sd = math.sqrt((4 * 3 / 2 - 1) / batch)  # c: mean of 2x² 1(x<0) over the batch; Var 4·3/2 − 1
    stuck, escaped = flips[flips["crossed 0 at step"].isna()], flips[flips["crossed 0 at step"].notna()]
    answer = (
        "**Answer.** For w < 0 the batch gradient is c·w with c = 2·mean(x² 1(x < 0)), which is 1 on "
        "average, so one SGD step maps w to (1 − lr·c)·w. While lr·c < 1 the sign never changes and w "
        "creeps towards 0; once lr·c > 1 the step lands on the positive side, where the loss (1 − "
        "w)²/2 has the same curvature, and SGD converges to 1 for any learning rate below 2. With "
        f"{batch:,} samples per batch c fluctuates by ±{c_sd:.3f} (one standard deviation), so at a "
        f"learning rate of {lr:g} a batch with c above 1/{lr:g} ≈ {1 / lr:.2f} flips the sign, but only if it "
        "comes early: every other step multiplies w by about 0.1, so w soon shrinks to a subnormal float32 "
        "number, its gradient underflows to 0 and it stops moving for good. The seeds that escape had "
        "their first such batch at step")
    return (answer + ("s " if len(escaped) > 1 else " ") + _joined(escaped["first such step"])
            + " and crossed 0 right there. The seed that stays negative had "
            + _joined(stuck["batches with c > 1/lr"]) + " such batches in the 200 steps, the first at step "
            + _joined(stuck["first such step"]) + ", but its w had stopped moving after step "
            + _joined(stuck["last step that moved w"]) + ", at w = " + _joined(stuck["final w"], ".1e") + ".")

