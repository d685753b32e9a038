"""helpers.residual: residual streams, branch fixes, pre-/post-LN transformers, warmup."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import residual as R


def test_block_matches_hand_computation():
    torch.manual_seed(0)
    net = R.residual_mlp(3, 2, depth=4, width=5, branch="scaled")
    block, x = net.block2, torch.randn(7, 5)
    f = block.linear2(torch.relu(block.linear1(x)))
    torch.testing.assert_close(block(x), x + f / 2)  # 1/sqrt(4)
    no_skip = R.residual_mlp(3, 2, depth=4, width=5, skip=False).block1
    torch.testing.assert_close(no_skip(x), no_skip.linear2(torch.relu(no_skip.linear1(x))))


@pytest.mark.parametrize("branch", ["zero", "rezero", "fixup"])
def test_identity_at_init_and_branch_learns(branch):
    torch.manual_seed(0)
    net = R.residual_mlp(4, 3, depth=3, width=8, branch=branch)
    x = torch.randn(16, 8)
    for block in net.blocks():
        torch.testing.assert_close(block(x), x)
    loss = torch.nn.functional.cross_entropy(net(torch.randn(16, 4)), torch.randint(3, (16,)))
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert grads, "some parameter must get a gradient at init"


def test_fixup_details():
    torch.manual_seed(0)
    net = R.residual_mlp(4, 3, depth=9, width=200, branch="fixup")
    w = net.block1.linear1.weight
    assert w.var().item() == pytest.approx(2 / 200 / 9, rel=0.05)  # He / L^(1/(2m-2)), m = 2
    assert net.output.weight.abs().sum() == 0 and net.block1.linear1.bias is None
    names = {n for n, _ in net.block1.named_parameters()}
    assert {"bias1a", "bias1b", "bias2a", "bias2b", "scale"} <= names


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="branch='skipinit'.*'rezero'"):
        R.residual_mlp(4, 3, 2, 8, branch="skipinit")
    with pytest.raises(ValueError, match="norm='layer'"):
        R.residual_mlp(4, 3, 2, 8, branch="fixup", norm="layer")
    with pytest.raises(ValueError, match="branch='zero'"):
        R.residual_mlp(4, 3, 2, 8, branch="zero", skip=False)
    with pytest.raises(TypeError, match="depth"):
        R.residual_mlp(4, 3, 2.0, 8)
    with pytest.raises(ValueError, match="growth="):
        R.predicted_stream_variance(3, 1.0, growth="linear")
    with pytest.raises(ValueError, match="1-D"):
        R.jacobian_singular_values(R.residual_mlp(4, 3, 1, 8).block1, torch.randn(2, 8))


def test_predicted_stream_variance_formula():
    np.testing.assert_allclose(R.predicted_stream_variance(4, 2.0, var0=0.5), 0.5 * 3.0 ** np.arange(5))
    np.testing.assert_allclose(R.predicted_stream_variance(2, 0.5, var0=2, growth="additive"), [2, 2.5, 3])


@pytest.mark.parametrize("depth", [4, 8])
def test_plain_stream_doubles_per_block(depth):
    ratios = []
    for seed in range(3):
        torch.manual_seed(seed)
        df = R.forward_variance(R.residual_mlp(16, 4, depth, 256), torch.randn(256, 16))
        ratios.append(df.relative.iloc[-1])
    predicted = R.predicted_stream_variance(depth, 1.0)[-1]
    assert abs(math.log(np.exp(np.mean(np.log(ratios))) / predicted)) < math.log(1.5)


def test_layer_norm_stream_grows_linearly():
    measured, predicted = [], []
    for seed in range(3):  # a branch adds 1/2 (LN gives unit variance, relu keeps half, W2 gain 1)
        torch.manual_seed(seed)
        df = R.forward_variance(R.residual_mlp(16, 4, 16, 256, norm="layer"), torch.randn(256, 16))
        measured.append(df.variance)
        predicted.append(R.predicted_stream_variance(16, 0.5, var0=df.variance.iloc[0], growth="additive"))
    np.testing.assert_allclose(np.mean(measured, 0), np.mean(predicted, 0), rtol=0.1)


def test_fixes_keep_variance_bounded():
    torch.manual_seed(0)
    x = torch.randn(128, 16)
    scaled = R.forward_variance(R.residual_mlp(16, 4, 32, 256, branch="scaled"), x).relative.iloc[-1]
    assert 1.5 < scaled < math.e * 1.5  # (1 + 1/L)^L -> e
    for branch in ("zero", "rezero", "fixup"):
        df = R.forward_variance(R.residual_mlp(16, 4, 32, 64, branch=branch), x)
        np.testing.assert_allclose(df.relative, 1.0, rtol=1e-5)


def test_forward_variance_leaves_batchnorm_state():
    net = R.residual_mlp(16, 4, 2, 32, norm="batch")
    before = net.block1.norm.running_mean.clone()
    R.forward_variance(net, torch.randn(64, 16) + 3)
    torch.testing.assert_close(net.block1.norm.running_mean, before)


def test_backward_signal_against_autograd_and_vanishing():
    torch.manual_seed(0)
    net, x, y = R.residual_mlp(8, 3, 3, 16), torch.randn(32, 8), torch.randint(3, (32,))
    df = R.backward_signal(net, x, y)
    h = net.stem(x)
    for block in net.blocks():
        h = block(h)
    h.retain_grad()
    torch.nn.functional.cross_entropy(net.output(h), y).backward()
    assert df.grad_norm.iloc[-1] == pytest.approx(h.grad.norm().item(), rel=1e-5)
    torch.manual_seed(0)
    plain = R.backward_signal(R.residual_mlp(8, 3, 20, 64, skip=False, init="pytorch"), x, y)
    skip = R.backward_signal(R.residual_mlp(8, 3, 20, 64, init="pytorch"), x, y)
    assert plain.relative.iloc[1] < 1e-6 and skip.relative.iloc[1] > 0.5


def test_jacobian_singular_values_match_hand_formula():
    torch.manual_seed(0)
    block, x = R.residual_mlp(4, 2, 1, 6).block1, torch.randn(6)
    mask = (block.linear1(x) > 0).float()
    jac = torch.eye(6) + block.linear2.weight @ torch.diag(mask) @ block.linear1.weight
    torch.testing.assert_close(R.jacobian_singular_values(block, x), torch.linalg.svdvals(jac))
    scaled = R.jacobian_singular_values(R.residual_mlp(4, 2, 100, 64, branch="scaled").block1, torch.randn(64))
    assert 0.5 < scaled.min() and scaled.max() < 1.5


def test_signal_profiles_against_the_single_measurements():
    x, y = torch.randn(32, 8), torch.randint(3, (32,))
    nets = {"plain": dict(n_in=8, n_out=3, depth=3, width=16), "rezero": dict(n_in=8, n_out=3, depth=3, width=16,
                                                                              branch="rezero")}
    df = R.signal_profiles(nets, x, y, range(2))
    assert len(df) == 2 * 2 * 4 and set(df.net) == {"plain", "rezero"}
    torch.manual_seed(1)
    model = R.residual_mlp(**nets["plain"])
    one = df[(df.net == "plain") & (df.seed == 1)]
    np.testing.assert_allclose(one.variance, R.forward_variance(model, x).variance, rtol=1e-6)
    np.testing.assert_allclose(one.backward, R.backward_signal(model, x, y).relative, rtol=1e-6)
    assert (df[df.net == "rezero"].forward.round(6) == 1).all()


def test_block_spectra_are_the_blocks_singular_values():
    nets = {"zero": dict(n_in=4, n_out=2, depth=2, width=6, branch="zero"), "plain": dict(n_in=4, n_out=2, depth=2,
                                                                                        width=6)}
    df = R.block_spectra(nets, range(1), block=2)
    np.testing.assert_allclose(df[df.net == "zero"].singular_value, 1.0, rtol=1e-6)
    torch.manual_seed(0)
    block = R.residual_mlp(**nets["plain"]).block2
    x = torch.randn(6, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(df[df.net == "plain"].singular_value, R.jacobian_singular_values(block, x), rtol=1e-5)


def test_train_nets_reports_divergence_and_accuracy():
    from helpers.data import make_blobs

    blobs = make_blobs(200)
    nets = {"ok": dict(n_in=2, n_out=blobs.n_classes, depth=2, width=16, branch="scaled"),
            "huge": dict(n_in=2, n_out=blobs.n_classes, depth=2, width=16)}
    df = R.train_nets(nets, blobs, range(1), steps=30, lr=0.1, batch_size=32)
    ok = df.set_index("net").loc["ok"]
    assert ok.status == "ok" and 0 <= ok.test_accuracy <= 1 and math.isfinite(ok.final_loss)
    diverged = R.train_nets({"huge": nets["huge"]}, blobs, range(1), steps=5, lr=1e12, batch_size=32)
    assert diverged.status.iloc[0] == "diverged" and math.isnan(diverged.test_accuracy.iloc[0])


def test_first_step_change_is_one_sgd_step():
    x, y = torch.randn(16, 4), torch.randint(3, (16,))
    net = dict(n_in=4, n_out=3, depth=2, width=8, branch="scaled")
    df = R.first_step_change({"scaled": net}, x, y, 0.1, range(1))
    torch.manual_seed(0)
    model = R.residual_mlp(**net)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model(x).detach()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    expected = float((model(x).detach() - before).pow(2).mean().sqrt())
    assert df.change.iloc[0] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="lr"):
        R.first_step_change({"scaled": net}, x, y, 0.0, range(1))


def test_residual_plots_draw_what_they_are_given():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from helpers import residual_plots as figs

    x, y = torch.randn(16, 8), torch.randint(3, (16,))
    nets = {"plain": dict(n_in=8, n_out=3, depth=3, width=8), "zero": dict(n_in=8, n_out=3, depth=3, width=8,
                                                                           branch="zero")}
    profiles = R.signal_profiles(nets, x, y, range(2))
    fig = figs.signal_through_depth(profiles, R.block_spectra(nets, range(2)), list(nets))
    assert [line.get_label() for line in fig.axes[0].lines] == ["plain", "zero"]
    fig = figs.stream_growth(profiles, list(nets), depth=3)
    assert fig.axes[0].lines[-1].get_ydata().tolist() == [1.0, 2.0, 4.0, 8.0]  # the prediction 2^l
    updates = pd.DataFrame({"run": ["a"] * 4, "step": [1, 1, 2, 2], "layer": [1, 2, 1, 2],
                            "update_ratio": [0.1, 0.2, 0.05, 0.1]})
    assert figs.adam_updates(updates).axes[0].get_yscale() == "log"
    assert "8 blocks" in figs.depth_explorer(8, "rezero", width=8, seeds=range(1))._suptitle.get_text()
    with pytest.raises(ValueError, match="profiles"):
        figs.stream_growth(profiles.drop(columns="forward"), list(nets), depth=3)


def test_experiments_leave_the_global_generator_alone():
    from helpers.data import make_blobs

    blobs = make_blobs(100)
    net = dict(n_in=2, n_out=blobs.n_classes, depth=2, width=8, branch="scaled")
    state = torch.get_rng_state()
    R.signal_profiles({"a": net}, blobs.x_train, blobs.y_train, range(2))
    R.block_spectra({"a": net}, range(1))
    R.first_step_change({"a": net}, blobs.x_train, blobs.y_train, 0.1, range(1))
    R.train_nets({"a": net}, blobs, range(1), steps=3, lr=0.1, batch_size=16)
    assert torch.equal(state, torch.get_rng_state())
