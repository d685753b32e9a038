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
    with pytest.raises(ValueError, match="ln='mid'"):
        R.TinyTransformer(10, 8, 2, 1, ln="mid")
    with pytest.raises(ValueError, match="heads=3"):
        R.TinyTransformer(10, 8, 3, 1)
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


def test_tasks():
    x, y = R.reverse_task(3, 5, 7, seed=1)
    assert x.shape == (3, 5) and x.max() < 7 and torch.equal(y, x.flip(1))
    assert torch.equal(R.copy_task(3, 5, 7, seed=1)[0], x)
    assert torch.equal(R.sort_task(3, 5, 7, seed=1)[1], torch.sort(x, dim=1).values)
    assert not torch.equal(R.copy_task(3, 5, 7, seed=2)[0], x)


def test_transformer_ln_position_and_grad_norms():
    for ln, first in (("pre", True), ("post", False)):
        model = R.TinyTransformer(10, 8, 2, 3, ln=ln, max_len=6)
        assert all(layer.norm_first is first for layer in model.layers)
    batch = R.reverse_task(8, 6, 10)
    df = R.layer_grad_norms(model, batch)
    assert df.layer.tolist() == [1, 2, 3] and all(p.grad is None for p in model.parameters())
    R.sequence_loss(model(batch[0]), batch[1]).backward()
    by_hand = math.sqrt(sum(p.grad.pow(2).sum().item() for p in model.layers[2].parameters()))
    assert df.grad_norm.iloc[2] == pytest.approx(by_hand, rel=1e-4)


def test_warmup_schedule_and_callback():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.8)
    sched, seen = R.warmup(opt, 4), []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(seen, [0.2, 0.4, 0.6, 0.8, 0.8, 0.8])
    from helpers.train import Every, fit
    lrs = []
    fit(torch.nn.Linear(2, 2), (torch.randn(8, 2), torch.randint(2, (8,))), steps=3, lr=0.3, eval_every=None,
        progress=False, callbacks=[R.Warmup(3), Every(1, lambda run: lrs.append(run.optimizer.param_groups[0]["lr"]))])
    np.testing.assert_allclose(lrs, [0.2, 0.3, 0.3])  # read after each step: lr of the next one


def test_adam_first_updates_shrink_with_warmup():
    batch = R.reverse_task(16, 6, 10)
    runs = {}
    for w in (1, 10):
        torch.manual_seed(0)
        runs[w] = R.adam_first_updates(R.TinyTransformer(10, 16, 2, 2, max_len=6), batch, 1e-3, 3, w)
    assert runs[1].shape == (6, 3) and (runs[1].update_ratio > 0).all()
    first = {w: df[df.step == 1].update_ratio.to_numpy() for w, df in runs.items()}
    np.testing.assert_allclose(first[10], first[1] / 10, rtol=0.05)  # Adam's step is ∝ lr
