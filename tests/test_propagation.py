"""helpers.propagation (and its figures, helpers.propagation_plots): per-layer measurements against
hand-written forward passes, numpy and torch."""

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

from helpers import init, propagation  # noqa: E402
from helpers import propagation_plots as figs  # noqa: E402
from helpers.data import make_blobs  # noqa: E402
from helpers.models import mlp  # noqa: E402
from helpers.train import fit  # noqa: E402


def _net(activation="relu", depth=3, width=16, seed=0, **kwargs):
    return init.init_(mlp(8, 3, depth=depth, width=width, activation=activation, **kwargs), "kaiming_normal",
                      seed=seed)


def test_layer_outputs_match_a_forward_pass_written_out_and_leave_no_hook():
    net, x = _net("tanh"), torch.randn(5, 8)
    acts, linears = propagation.layer_outputs(net, x), propagation.layer_outputs(net, x, where="linear")
    h = x
    for i, block in enumerate(net.hidden_blocks()):
        pre = block.linear(h)
        torch.testing.assert_close(linears[i], pre.detach())
        h = torch.tanh(pre)
        torch.testing.assert_close(acts[i], h.detach())
    torch.testing.assert_close(linears[-1], net.output(h).detach())
    assert len(acts) == 3 and len(linears) == 4
    assert all(not m._forward_hooks for m in net.modules())
    assert propagation.hidden_variances(net, x) == pytest.approx([float(o.var()) for o in linears[:-1]])
    with pytest.raises(ValueError, match="where='pre'.*'act', 'linear'"):
        propagation.layer_outputs(net, x, where="pre")


def test_layer_summary_statistics_and_histograms():
    out = torch.tensor([[0.99, -0.5, 0.0, 0.2], [-0.98, 0.96, 0.1, -0.1]])
    stats, hists = propagation.layer_summary([out, out * 0.5], "tanh", case="c", bins=5)
    assert stats.frac_saturated.tolist() == pytest.approx([0.25, 0.0])
    assert stats["std"][0] == pytest.approx(float(out.std()))
    assert stats.frac_zero[0] == pytest.approx(1 / 8)
    assert set(hists.case) == {"c"} and hists.groupby("index").density.sum().tolist() == pytest.approx([1, 1])
    counts, _ = np.histogram(out.numpy(), bins=5, range=(-1, 1))
    assert hists[hists["index"] == 1].density.to_numpy() == pytest.approx(counts / counts.sum())
    relu_stats, relu_hists = propagation.layer_summary([torch.tensor([[0.0, 1.0, 5.0, 0.0]])], "relu", bins=4)
    assert math.isnan(relu_stats.frac_saturated[0]) and relu_stats.frac_zero[0] == 0.5
    assert relu_hists.density.tolist() == pytest.approx([0, 0.5, 0, 0.5])  # positives only, 5 → last bin
    with pytest.raises(ValueError, match="bins=0"):
        propagation.layer_summary([out], "tanh", bins=0)


def test_measured_vs_predicted_divides_the_sample_variance_by_the_prediction():
    predicted = pd.DataFrame({"layer": [1, 2], "activation_var": [1.0, 4.0]})
    g = torch.Generator().manual_seed(0)
    draws = [[torch.randn(100, 50, generator=g), 2 * torch.randn(100, 50, generator=g)] for _ in range(3)]
    df = propagation.measured_vs_predicted(draws, predicted)
    assert df.seed.tolist() == [0, 0, 1, 1, 2, 2]
    assert df.measured[3] == pytest.approx(float(draws[1][1].var()))
    assert df.ratio.to_numpy() == pytest.approx(df.measured / df.predicted)
    assert df.ratio.between(0.9, 1.1).all()


def test_theory_table_takes_means_at_the_layers_asked_for():
    compare = pd.DataFrame({"case": ["a"] * 4 + ["b"] * 4, "seed": [0, 0, 1, 1] * 2, "layer": [1, 2] * 4,
                            "predicted": [1.0, 2.0] * 4, "measured": [1.1, 1.9, 0.9, 2.3, 2, 4, 2, 4]})
    compare["ratio"] = compare.measured / compare.predicted
    table = propagation.theory_table(compare, ["b", "a"], layers=[2])
    assert list(table.index) == ["b", "a"]
    assert table[("layer 2", "measured")].tolist() == pytest.approx([4.0, 2.1])
    assert table[("single seeds", "÷ predicted")].tolist() == ["2.00–2.00", "0.90–1.15"]


def test_gradient_profile_matches_a_backward_pass_and_leaves_the_net_alone():
    net, x, y = _net("sigmoid"), torch.randn(32, 8), torch.randint(0, 3, (32,))
    sat, grad = propagation.gradient_profile(net, x, y)
    nn.functional.cross_entropy(net(x), y).backward()
    manual = [float(m.weight.grad.norm()) for m in [b.linear for b in net.hidden_blocks()] + [net.output]]
    assert grad == pytest.approx(manual, rel=1e-5)
    acts = propagation.layer_outputs(net, x)
    assert sat == pytest.approx(np.mean([float(((a < 0.03) | (a > 0.97)).float().mean()) for a in acts]))
    fresh = _net("sigmoid")
    propagation.gradient_profile(fresh, x, y)
    assert all(p.grad is None for p in fresh.parameters())


def test_row_symmetry_counts_identical_units():
    const = init.init_(mlp(8, 3, depth=2, width=6), "constant", value=0.1)
    rows = propagation.row_symmetry(const)
    assert rows["hidden1: distinct rows"] == 1 and rows["hidden2: max |row − row 1|"] == 0.0
    assert rows["hidden1: weight std"] == pytest.approx(0.0, abs=1e-7)
    assert propagation.row_symmetry(init.init_(mlp(8, 3, depth=2), "zeros"))["hidden2: weight std"] == 0.0
    random = propagation.row_symmetry(_net(width=6))
    assert random["hidden2: distinct rows"] == 6 and random["hidden1: max |row − row 1|"] > 0


def test_train_seeds_rows_history_and_determinism():
    data = make_blobs(120, n_classes=3, seed=0)
    kwargs = dict(model=dict(depth=2, width=8), init_kwargs=dict(scheme="kaiming_normal"), steps=6, lr=0.1)
    runs, history = propagation.train_seeds(data, [0, 1], **kwargs)
    again, _ = propagation.train_seeds(data, [1], **kwargs)
    assert runs.seed.tolist() == [0, 1] and set(runs.status) == {"ok"}
    assert runs["final train loss"][1] == again["final train loss"][0]
    losses = history[(history.seed == 0) & (history.metric == "loss")].value
    assert runs["final train loss"][0] == pytest.approx(losses.mean())  # fewer than 20 steps: all of them
    assert set(history[history.split == "test"].step) == {0, 6}  # evaluated at the start and the end only


def test_variances_by_seed_equals_hidden_variances_of_each_draw():
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
    kwargs = dict(model=dict(depth=3, width=16, activation="tanh"), init_kwargs=dict(scheme="xavier_normal"))
    table = propagation.variances_by_seed(x, [0, 5], **kwargs)
    net = init.init_(mlp(8, 10, depth=3, width=16, activation="tanh"), "xavier_normal", seed=5)
    assert list(table.columns) == [1, 2, 3] and list(table.index) == [0, 5]
    assert table.loc[5].tolist() == pytest.approx(propagation.hidden_variances(net, x))


def test_fine_tune_vs_scratch_trains_both_starts_on_the_same_subset():
    ds = make_blobs(400, n_classes=4, seed=0)
    pretrained = fit(mlp(2, 2, depth=2, width=8), propagation.class_subset(ds, [0, 1]), steps=5,
                     progress=False).model
    runs = propagation.fine_tune_vs_scratch(pretrained, ds, [2, 3], n_trains=[20], seeds=[0, 1],
                                            model=dict(depth=2, width=8), init_kwargs=dict(scheme="kaiming_normal"),
                                            steps=3, lr=0.1)
    assert runs[["n_train", "seed", "start"]].values.tolist() == [[20, 0, "pre-trained"], [20, 0, "random"],
                                                                  [20, 1, "pre-trained"], [20, 1, "random"]]
    assert runs["test accuracy"].between(0, 1).all()
    head = propagation.fresh_head(pretrained, 2, seed=0)
    task = propagation.class_subset(ds, [2, 3], n_train=20, seed=0)
    again = fit(head, task, steps=3, lr=0.1, seed=0, eval_every=3, progress=False).final()
    assert runs["test accuracy"][0] == again  # the same subset, head and run


def test_final_numbers_counts_a_diverged_run_as_the_worst():
    data = make_blobs(60, n_classes=3, seed=0)
    diverged = fit(init.init_(mlp(2, 3, depth=2, width=8), "normal", std=50.0), data, steps=30, lr=1e6,
                   progress=False)
    assert diverged.status == "diverged"
    assert propagation.final_numbers(diverged) == {"status": "diverged", "final train loss": math.inf,
                                                   "test accuracy": 0.0}


def test_example_spread_init_spread_and_log_gaps():
    assert propagation.example_spread(torch.tensor([[1.0, 2.0], [3.0, 2.0]])) == pytest.approx(
        (math.sqrt(2) + 0) / 2 / 2.0)
    spread, between = propagation.init_spread({"K": "kaiming_normal", "D": "pytorch_default"},
                                              torch.randn(50, 8), range(2), depth=4, width=16)
    assert len(spread) == 2 * 2 * 4 and between.shape == (2, 2) and set(spread.quantity) == {"act_std"}
    frame = pd.DataFrame({"init": ["a"] * 2 + ["b"] * 4, "seed": [0, 1, 0, 1, 0, 1], "index": [1, 1, 1, 1, 2, 2],
                          "quantity": "act_std", "value": [1.0, 1.0, 2.0, 8.0, 1.0, 1.0]})
    frame = pd.concat([frame, frame[frame.init == "a"].assign(index=2)], ignore_index=True)
    scheme_gap, draw_gap = propagation.log_gaps(frame, "a", "b")
    assert scheme_gap == pytest.approx(math.log(4)) and draw_gap == pytest.approx(math.log(4))


def test_relu_moments_keep_the_direction_they_are_set_for():
    x = torch.randn(400, 600, generator=torch.Generator().manual_seed(0))
    widths = [600, 500, 400, 300, 200]
    forward, backward = propagation.relu_moments(x, widths, "fan_in")
    assert len(forward) == len(backward) == 5 and forward[0] == pytest.approx(float(x.pow(2).mean()))
    assert 0.8 < forward[-1] / forward[0] < 1.25
    assert 0.8 < backward[0] / backward[-1] * (600 / 200) < 1.25
    forward, backward = propagation.relu_moments(x, widths, "fan_out")
    assert 0.8 < backward[0] / backward[-1] < 1.25
    assert 0.8 < forward[-1] / forward[0] / 3 < 1.25


def test_jacobian_singular_values_of_a_linear_net_are_those_of_its_weight_product():
    orth = propagation.jacobian_singular_values("identity", "orthogonal", 0, depth=6, width=16)
    gauss = propagation.jacobian_singular_values("identity", "xavier_normal", 2, depth=6, width=16)
    assert orth.shape == (16,) and orth == pytest.approx(np.ones(16), abs=1e-4)
    net = mlp(16, 16, depth=6, width=16, activation="identity", bias=False, flatten=False)
    init.init_(net, "xavier_normal", activation="identity", seed=2)  # the same draw
    product = torch.eye(16)
    for _, layer in reversed(list(propagation.weight_layers(net))):
        product = product @ layer.weight.detach()
    assert gauss == pytest.approx(torch.linalg.svdvals(product).numpy(), rel=1e-4, abs=1e-6)
    assert gauss.max() / gauss.min() > 10


def test_lsuv_variances_are_one_on_the_batch_it_saw():
    x = torch.randn(128, 64, generator=torch.Generator().manual_seed(0))
    df = propagation.lsuv_variances("tanh", x, {"own": x, "other": torch.randn(128, 64)}, depth=5, width=32)
    assert len(df) == 10 and df[df.batch == "own"].variance.between(0.9, 1.1).all()
    state = torch.random.get_rng_state()
    propagation.lsuv_variances("gelu", x, {"own": x}, depth=2, width=8)
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is left alone


def test_class_subset_and_fresh_head():
    ds = make_blobs(300, n_classes=4, seed=0)
    sub = propagation.class_subset(ds, [3, 1])
    keep = np.isin(ds.y_train.numpy(), [3, 1])
    assert len(sub.y_train) == keep.sum() and sub.n_classes == 2
    assert (sub.y_train.numpy() == np.where(ds.y_train.numpy()[keep] == 3, 0, 1)).all()
    assert len(propagation.class_subset(ds, [0, 1], n_train=7, seed=1).y_train) == 7
    with pytest.raises(ValueError, match="n_train=0"):
        propagation.class_subset(ds, [0, 1], n_train=0)
    net = mlp(2, 4, depth=2, width=8)
    head = propagation.fresh_head(net, 2, seed=3)
    assert head.output.out_features == 2 and net.output.out_features == 4
    torch.testing.assert_close(head.hidden1.linear.weight, net.hidden1.linear.weight)
    torch.testing.assert_close(head.output.weight, propagation.fresh_head(net, 2, seed=3).output.weight)


def test_explorer_outputs_are_homogeneous_in_the_multiplier_for_relu():
    x = torch.randn(64, 12, generator=torch.Generator().manual_seed(0))
    one = propagation.explorer_outputs("Kaiming", "relu", 5, 1.0, x)
    half = propagation.explorer_outputs("Kaiming", "relu", 5, 0.5, x)
    assert len(one) == 5
    for layer, (a, b) in enumerate(zip(one, half), start=1):
        torch.testing.assert_close(b, a * 0.5**layer, rtol=1e-4, atol=1e-7)
    ratios = propagation.scale_ratios(x, ["relu"], [1.0, 2.0], depth=5)
    assert set(ratios) == {(s, "relu", m) for s in propagation.EXPLORER_SCHEMES for m in (1.0, 2.0)}
    assert ratios[("Kaiming", "relu", 2.0)] == pytest.approx(16 * ratios[("Kaiming", "relu", 1.0)], rel=1e-4)
    with pytest.raises(ValueError, match="scheme='He'"):
        propagation.explorer_outputs("He", "relu", 5, 1.0, x)


@pytest.mark.parametrize("activation", ["tanh", "gelu", "sigmoid"])
def test_second_moment_matches_the_trapezoid_rule_of_init(activation):
    for q in (0.3, 1.0, 2.5):
        trapezoid = float(init._second_moments(activation, np.array(q), 0.01)[1])
        assert propagation.second_moment(activation, q) == pytest.approx(trapezoid, rel=1e-6)
    assert propagation.second_moment("identity", 2.5) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="q=-1.0"):
        propagation.second_moment("tanh", -1.0)


def test_plots_draw_what_they_are_given():
    compare = pd.DataFrame({"case": ["a"] * 4 + ["b"] * 4, "seed": [0, 0, 1, 1] * 2, "layer": [1, 2] * 4,
                            "predicted": [1.0, 2.0] * 4, "measured": [1.1, 1.9, 0.9, 2.1] * 2})
    compare["ratio"] = compare.measured / compare.predicted
    fig = figs.plot_measured_vs_predicted(compare, {"a": ("C0", "-", "o"), "b": ("C1", "--", "s")})
    assert len(fig.axes[0].lines) == 4 and len(fig.legends[0].get_texts()) == 2
    history = pd.DataFrame({"step": [1, 2, 1, 2], "split": "train", "metric": "loss", "value": [2.3, 2.2, 2.4, 2.0],
                            "init": "x", "seed": [0, 0, 1, 1]})
    fig2 = figs.plot_median_loss(history, "init", "t")
    assert fig2.axes[0].lines[0].get_ydata().tolist() == pytest.approx([2.35, 2.1])
    sv = pd.DataFrame({"net": ["linear", "tanh"] * 4, "weights": ["g", "g", "o", "o"] * 2,
                       "log10 singular value": [-1.0, -2.0, 0.0, -0.5] * 2})
    assert len(figs.plot_singular_values(sv, depth=3).axes) == 2
    lsuv = pd.DataFrame({"activation": ["relu"] * 4, "batch": ["a", "a", "b", "b"], "layer": [1, 2, 1, 2],
                         "variance": [1.0, 1.0, 0.8, 0.8]})
    assert "2-layer" in figs.plot_lsuv(lsuv).axes[0].get_title()
    runs = pd.DataFrame({"n": [1, 1, 2, 2], "acc": [0.5, 0.6, 0.7, 0.8], "start": ["p", "r", "p", "r"]})
    fig3 = figs.plot_transfer(runs, "n", "acc", "start", "t", chance=0.2)
    assert fig3.axes[0].lines[-1].get_ydata()[0] == 0.2
    fig4 = figs.activation_histograms("Xavier (gain 1)", "tanh", 12, "×0.5", torch.randn(32, 12))
    assert len(fig4.axes) == 10 and "weights × 0.5" in fig4._suptitle.get_text()
    ax = plt.subplots()[1]
    ax.set_yscale("log")
    figs.decade_ticks(ax)
    assert ax.yaxis.get_major_formatter()(0.05, 0) == "0.05"
    plt.close("all")
