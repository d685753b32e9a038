"""Tests of helpers.dying (dead-unit watch, the dead-ReLU experiments) and helpers.dying_plots."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from helpers import dying, dying_plots, stats, train  # noqa: E402
from helpers.data import make_blobs  # noqa: E402
from helpers.models import mlp  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _fit_watched(net, ds, every=5, steps=10, **kw):
    watch = dying.DeadUnitWatch(ds.x_train, every=every)
    result = train.fit(net, ds, steps=steps, progress=False, callbacks=[watch], **kw)
    return result, watch, watch.to_frame()


# -- DeadUnitWatch ----------------------------------------------------------------------------------
def test_watch_measures_at_start_every_n_steps_and_at_the_end():
    ds = make_blobs(120)
    _, _, frame = _fit_watched(mlp(2, 4, depth=2, width=8), ds, every=5, steps=12)
    for quantity in ("dead", "frozen", "zero"):
        assert sorted(frame[frame.quantity == quantity].step.unique().tolist()) == [0, 5, 10, 12]
    assert sorted(frame[frame.quantity == "batch_zero"].step.unique().tolist()) == list(range(1, 13))
    assert set(frame.layer) == {"hidden1.act", "hidden2.act"}


def test_watch_whole_set_values_match_stats_on_the_final_model():
    ds = make_blobs(120)
    net = mlp(2, 4, depth=2, width=16)
    with torch.no_grad():
        net.hidden1.linear.bias[:5] = -1e4  # five units of the first layer dead from the start
    result, _, frame = _fit_watched(net, ds, every=4, steps=8, lr=0.05)
    last = frame[frame.step == 8].set_index(["layer", "quantity"]).value
    with torch.no_grad():
        h1 = result.model.hidden1(ds.x_train)
        h2 = result.model.hidden2(h1)
    for name, out in (("hidden1.act", h1), ("hidden2.act", h2)):
        assert last[name, "dead"] == pytest.approx(float(stats.dead_units(out).float().mean()))
        assert last[name, "frozen"] == pytest.approx(float(stats.frozen_units(out).float().mean()))
        assert last[name, "zero"] == pytest.approx(float((out == 0).float().mean()))
    first = frame[(frame.step == 0) & (frame.layer == "hidden1.act")].set_index("quantity").value
    assert first["dead"] >= 5 / 16
    assert dying.final(frame[frame.layer == "hidden1.act"], "dead") >= 5 / 16


def test_watch_batch_zero_is_the_zero_share_of_each_training_batch():
    ds = make_blobs(100)
    net = mlp(2, 4, depth=1, width=32)
    with torch.no_grad():
        expected = float((net.hidden1(ds.x_train) == 0).float().mean())
    # full batch: the batch of step 1 is the whole training set, on the initial weights
    _, _, frame = _fit_watched(net, ds, every=1, steps=3, batch_size=None)
    step1 = frame[(frame.quantity == "batch_zero") & (frame.step == 1)].value
    assert step1.tolist() == pytest.approx([expected])
    whole0 = frame[(frame.quantity == "zero") & (frame.step == 0)].value
    assert whole0.tolist() == pytest.approx([expected])


def test_watch_removes_its_hooks_and_restores_training_mode():
    ds = make_blobs(80)
    net = mlp(2, 4, depth=2, width=8, norm="batch")
    _fit_watched(net, ds, every=2, steps=4)
    assert all(not m._forward_hooks for m in net.modules())
    assert net.training


def test_watch_measures_the_step_a_run_diverges_at():
    ds = make_blobs(80)
    calls = []

    def loss(out, y):  # finite for two training steps, then infinite
        calls.extend([1] if torch.is_grad_enabled() else [])
        value = nn.functional.cross_entropy(out, y)
        return value * math.inf if len(calls) == 3 else value

    result, _, frame = _fit_watched(mlp(2, 4, depth=1), ds, every=10, steps=10, loss=loss, eval_every=10)
    assert result.status == "diverged" and result.diverged_step == 3
    assert sorted(frame[frame.quantity == "dead"].step.unique().tolist()) == [0, 3]


def test_watch_checks_its_arguments():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        dying.DeadUnitWatch([[0.0]])
    with pytest.raises(ValueError, match="every=0"):
        dying.DeadUnitWatch(torch.zeros(2, 2), every=0)
    with pytest.raises(ValueError, match="quantity='alive'"):
        dying.final(pd.DataFrame({"step": [0], "quantity": ["dead"], "value": [0.0]}), "alive")


def test_final_takes_the_last_step_or_the_last_k_steps():
    frame = pd.DataFrame({"step": [1, 2, 3, 3], "quantity": "batch_zero", "value": [0.0, 0.2, 0.4, 0.6]})
    assert dying.final(frame, "batch_zero") == pytest.approx(0.5)
    assert dying.final(frame, "batch_zero", last=2) == pytest.approx((0.2 + 0.4 + 0.6) / 3)


def test_dead_on_batches_never_understates_the_whole_set():
    out = torch.relu(torch.randn(400, 50, generator=torch.Generator().manual_seed(0)) - 1.5)
    whole = stats.frac_dead(out)
    assert dying.dead_on_batches(out, 400, n=3) == pytest.approx(whole)
    small, large = dying.dead_on_batches(out, 4), dying.dead_on_batches(out, 64)
    assert small > large >= whole


# -- the unnormalized-pixels experiment -------------------------------------------------------------
def test_scaled_and_pixels_net():
    ds = dying.scaled(255)
    assert float(ds.x_train.max()) == pytest.approx(255.0) and float(ds.x_train.min()) == 0.0
    assert torch.equal(ds.y_train, dying.scaled(1).y_train)
    net = dying.pixels_net(seed=3)
    w = net.hidden1.linear.weight.detach()
    assert w.shape == (300, 64) and float(w.std()) == pytest.approx(0.01, rel=0.05)
    assert float(net.hidden1.linear.bias.detach().abs().max()) == 0.0
    assert torch.equal(w, dying.pixels_net(seed=3).hidden1.linear.weight)
    with pytest.raises(ValueError, match="top"):
        dying.scaled(0)


def test_run_is_memoized_and_sweep_tabulates_it():
    first = dying.run(steps=2, every=1, seed=0)
    assert dying.run(steps=2, every=1, seed=0) is first
    result, frame = first
    assert result.steps_run == 2 and sorted(frame.step.unique().tolist()) == [0, 1, 2]
    table = dying.sweep({"tiny": dict(steps=2, every=1)}, seeds=(0,), label="name")
    assert table.loc[0, "name"] == "tiny" and table.loc[0, "test accuracy"] == result.final()
    assert table.loc[0, "dead"] == dying.final(frame, "dead")
    listed = dying.sweep([dict(steps=2, every=1)])
    assert listed.loc[0, "steps"] == 2 and "relu_rate (last 20 steps)" in listed


def test_remedy_table_leaves_diverged_runs_out_of_the_means():
    frame = pd.DataFrame({"remedy": ["a", "a", "b"], "diverged": [False, True, True],
                          "test accuracy": [0.8, 0.1, 0.1], "dead": [0.0, 1.0, 1.0], "frozen": [0.1, 1.0, 1.0]})
    table = dying.remedy_table(frame)
    assert table.loc["a", "test accuracy"] == 0.8 and math.isnan(table.loc["b", "dead units"])
    assert table["diverged (of 2)"].tolist() == [1, 1]


def test_diary_net_blocks_the_gradient_of_the_body_only():
    x, y = torch.randn(16, 64), torch.randint(0, 10, (16,))
    for variant, body_grad in (("ReLU", True), ("ReLU, gradient blocked", False)):
        net = dying.diary_net(variant, 0)
        nn.functional.cross_entropy(net(x), y).backward()
        assert (net.hidden1.linear.weight.grad is not None) is body_grad
        assert net.output.weight.grad is not None
    assert torch.equal(dying.diary_net("tanh", 1).output.weight, dying.diary_net("tanh", 1).output.weight)
    with pytest.raises(ValueError, match="variant='sigmoid'"):
        dying.diary_net("sigmoid", 0)


# -- one neuron -------------------------------------------------------------------------------------
def test_neuron_loss_agrees_with_its_closed_form():
    for w in (-1.5, -0.3, 0.4, 2.0):
        for slope in (0.0, 0.3):
            assert dying.neuron_loss(w, slope, n=400_000) == pytest.approx(
                float(dying.neuron_loss_closed(w, slope)), abs=0.01)
    assert dying.neuron_loss(-2.0, positive_only=True) == pytest.approx(1.0, abs=0.02)  # output 0: E[x²]
    assert np.allclose(dying.neuron_loss_closed(np.array([0.0, 1.0])), [0.5, 0.0])


def test_neuron_paths_plain_sgd_follows_the_curvature_map():
    path, c = dying.neuron_paths(lr=0.01, w0=(-10.0, -1.0), seeds=2, steps=5)
    assert path.shape == (6, 2, 2) and c.shape == (5, 2, 2)
    assert torch.allclose(path[1:], (1 - 0.01 * c) * path[:-1], rtol=1e-5)
    assert float(c.mean()) == pytest.approx(1.0, abs=0.1)  # E[2x² 1(x<0)] = 1


def test_neuron_paths_adam_matches_torch():
    path, _ = dying.neuron_paths(optimizer="adam", lr=0.1, amsgrad=True, w0=(-1.0,), seeds=1, steps=3, seed=5)
    gen = torch.Generator().manual_seed(5)
    w = torch.tensor([[-1.0]], requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1, amsgrad=True)
    for _ in range(3):
        x = torch.randn(1, 1, 1000, generator=gen)
        loss = ((torch.relu(w[..., None] * x) - x.clamp_min(0)) ** 2).mean(-1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(path[-1], w.detach())


def test_sign_flips_reads_the_paths():
    path = torch.tensor([[-1.0, -1.0], [-0.5, 0.5], [-0.25, 0.9], [-0.25, 1.0]])[:, None, :]
    curvature = torch.tensor([[0.5, 1.5], [0.5, 0.9], [2.0, 0.1]])[:, None, :]
    table = dying.sign_flips(path, curvature, lr=1.0)
    assert table["first such step"].tolist() == [3, 1]
    assert table["batches with c > 1/lr"].tolist() == [1, 1]
    assert table["last step that moved w"].tolist() == [2, 3]
    assert math.isnan(table["crossed 0 at step"][0]) and table["crossed 0 at step"][1] == 1
    assert dying.weight_text(1e-6) == "1.0e-06" and dying.weight_text(0.5) == "0.500"


# -- born dead --------------------------------------------------------------------------------------
def test_born_dead_matches_its_closed_form_and_biases_help():
    sim = dying.born_dead(2, 6, trials=4000)
    assert len(sim) == 6 and sim == sorted(sim)
    assert max(abs(p - dying.born_dead_closed(2, d + 1)) for d, p in enumerate(sim)) < 0.03
    assert dying.born_dead_closed(1, 1) == 0.5 and dying.born_dead_closed(5, 0) == 0.0
    none, positive = (dying.born_dead(3, 20, bias=b, trials=2000)[-1] for b in ("none", "positive"))
    assert positive < none - 0.05
    with pytest.raises(ValueError, match="bias='negative'"):
        dying.born_dead(3, 2, bias="negative")


# -- figures ----------------------------------------------------------------------------------------
def test_figures_have_their_panels():
    watch = pd.DataFrame({"step": [0, 1, 0, 1, 1, 2, 0, 1], "layer": "h",
                          "quantity": ["dead", "dead", "zero", "zero", "batch_zero", "batch_zero", "frozen", "frozen"],
                          "value": [0.0, 0.5, 0.5, 0.6, 0.5, 0.7, 0.0, 0.4]})
    assert len(dying_plots.zero_and_dead(watch.assign(setting="s")).axes) == 2
    assert len(dying_plots.watch_curves(watch, "t").axes[0].lines) == 2
    loss = pd.DataFrame({"step": [1, 2], "value": [2.0, 1.0]})
    assert len(dying_plots.watch_curves(watch, "t", loss=loss).axes) == 2
    sweep = pd.DataFrame({"activation": ["relu"] * 2, "lr": [0.1, 0.5], "top": [1, 1], "test accuracy": [0.9, 0.1],
                          "dead": [0.0, 1.0]})
    assert dying_plots.accuracy_vs_lr(sweep, (0.1, 0.5), "t").axes[0].get_xscale() == "log"
    assert len(dying_plots.phase_heatmaps(sweep).axes) == 2
    paths = {"SGD": torch.zeros(4, 2, 3), "Adam": torch.ones(4, 2, 3)}
    fig = dying_plots.weight_paths(paths, dashed="Adam")
    assert [len(ax.lines) for ax in fig.axes] == [4, 4] and fig.axes[0].lines[1].get_linestyle() == "--"
    born = pd.DataFrame({"width": [2, 2, 3, 3], "depth": [1, 2, 1, 2], "simulated": 0.1, "closed form": 0.1})
    assert len(dying_plots.born_dead(born, every=1).axes[0].lines) == 4
    hists = pd.DataFrame({"variant": "v", "layer": ["a", "b"], "bin_left": 0.0, "bin_right": 1.0, "count": 3})
    assert len(dying_plots.output_histograms(hists).axes) == 2
    per_batch = pd.DataFrame({"1": [0.0, 0.1]}, index=[1, 11])
    assert len(dying_plots.per_batch_vs_whole(per_batch, per_batch, "t").axes[0].lines) == 2
    with pytest.raises(ValueError, match="lacks the columns"):
        dying_plots.neuron_loss(pd.DataFrame({"w": [0.0]}))


def test_fit_table_summarizes_runs():
    ds = make_blobs(80)
    runs = {("a", 0): train.fit(mlp(2, 4, depth=1), ds, steps=3, progress=False)}
    table = dying.fit_table(runs)
    row = table.iloc[0]
    assert (row.variant, row.seed, row.status) == ("a", 0, "ok")
    grads = runs["a", 0].curve("grad_abs_sum").value
    assert row["final gradient sum"] == grads.iloc[-1] and row["largest gradient sum"] == grads.max()
    assert row["accuracy on the batch"] == runs["a", 0].final("accuracy", "train")


def test_explorer_frames_draw_one_memoized_run(monkeypatch):
    tiny = dying.run(steps=2, every=1)
    seen = []
    monkeypatch.setattr(dying, "run", lambda *args, **kw: seen.append((args, kw)) or tiny)
    fig = dying_plots.phase_run(0.5, 255)
    assert seen[-1] == ((), {"lr": 0.5, "top": 255}) and "pixels in [0, 255]" in fig.axes[0].get_title()
    fig = dying_plots.activation_run("tanh", 0.1)
    assert seen[-1] == (("tanh",), {"lr": 0.1}) and len(fig.axes) == 2
    assert "final test accuracy" in fig.texts[0].get_text()
