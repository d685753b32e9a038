"""Tests of helpers.transformer: tasks, LayerNorm placement, warmup, Adam's first updates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import transformer as T


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="ln='mid'"):
        T.TinyTransformer(10, 8, 2, 1, ln="mid")
    with pytest.raises(ValueError, match="heads=3"):
        T.TinyTransformer(10, 8, 3, 1)


def test_tasks():
    x, y = T.reverse_task(3, 5, 7, seed=1)
    assert x.shape == (3, 5) and x.max() < 7 and torch.equal(y, x.flip(1))
    assert torch.equal(T.copy_task(3, 5, 7, seed=1)[0], x)
    assert torch.equal(T.sort_task(3, 5, 7, seed=1)[1], torch.sort(x, dim=1).values)
    assert not torch.equal(T.copy_task(3, 5, 7, seed=2)[0], x)


def test_transformer_ln_position_and_grad_norms():
    for ln, first in (("pre", True), ("post", False)):
        model = T.TinyTransformer(10, 8, 2, 3, ln=ln, max_len=6)
        assert all(layer.norm_first is first for layer in model.layers)
    batch = T.reverse_task(8, 6, 10)
    df = T.layer_grad_norms(model, batch)
    assert df.layer.tolist() == [1, 2, 3] and all(p.grad is None for p in model.parameters())
    T.sequence_loss(model(batch[0]), batch[1]).backward()
    by_hand = math.sqrt(sum(p.grad.pow(2).sum().item() for p in model.layers[2].parameters()))
    assert df.grad_norm.iloc[2] == pytest.approx(by_hand, rel=1e-4)


def test_warmup_schedule_and_callback():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.8)
    sched, seen = T.warmup(opt, 4), []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(seen, [0.2, 0.4, 0.6, 0.8, 0.8, 0.8])
    from helpers.train import Every, fit
    lrs = []
    fit(torch.nn.Linear(2, 2), (torch.randn(8, 2), torch.randint(2, (8,))), steps=3, lr=0.3, eval_every=None,
        progress=False, callbacks=[T.Warmup(3), Every(1, lambda run: lrs.append(run.optimizer.param_groups[0]["lr"]))])
    np.testing.assert_allclose(lrs, [0.2, 0.3, 0.3])  # read after each step: lr of the next one


def test_adam_first_updates_shrink_with_warmup():
    batch = T.reverse_task(16, 6, 10)
    runs = {}
    for w in (1, 10):
        torch.manual_seed(0)
        runs[w] = T.adam_first_updates(T.TinyTransformer(10, 16, 2, 2, max_len=6), batch, 1e-3, 3, w)
    assert runs[1].shape == (6, 3) and (runs[1].update_ratio > 0).all()
    first = {w: df[df.step == 1].update_ratio.to_numpy() for w, df in runs.items()}
    np.testing.assert_allclose(first[10], first[1] / 10, rtol=0.05)  # Adam's step is ∝ lr


def test_ffn_gradient_profiles_against_autograd():
    df = T.ffn_gradient_profiles([2, 3], range(2), d=8, heads=2, batch=4, length=6, vocab=10)
    assert len(df) == (2 + 3) * 2 * 2 and set(df.ln) == {"pre", "post"}
    torch.manual_seed(1)
    model = T.TinyTransformer(10, 8, 2, 3, ln="post", max_len=6)
    x, y = T.reverse_task(4, 6, 10, seed=1)
    T.sequence_loss(model(x), y).backward()
    by_hand = [float(layer.linear2.weight.grad.norm()) for layer in model.layers]
    one = df[(df.ln == "post") & (df.depth == 3) & (df.seed == 1)]
    np.testing.assert_allclose(one.grad_norm, by_hand, rtol=1e-5)
    np.testing.assert_allclose(one.relative, np.array(by_hand) / by_hand[-1], rtol=1e-5)


def test_train_sequences_curves_models_and_warmup():
    runs = T.train_sequences({"pre": {"ln": "pre"}, "post warm": {"ln": "post", "warmup": 5}}, range(1),
                             vocab=6, length=5, d=8, heads=2, layers=1, steps=10, record_every=5, lr=1e-2)
    assert runs.curves.step.tolist() == [1, 5, 10, 1, 5, 10]
    assert set(runs.models) == {("pre", 0), ("post warm", 0)} and runs.data[0].shape == (2048, 5)
    model = runs.models["pre", 0]
    x_test, y_test = T.reverse_task(512, 5, 6, seed=10_001)
    assert runs.finals.test_accuracy.iloc[0] == pytest.approx(T.sequence_accuracy(model, x_test, y_test))
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        T.train_sequences({"x": {"ln": "pre", "optimizer": "sgd"}}, range(1), steps=1)
    with pytest.raises(ValueError, match="ln='mid'"):
        T.train_sequences({"x": {"ln": "mid"}}, range(1), steps=1)


def test_adam_first_step_is_the_learning_rate_and_leaves_the_model():
    torch.manual_seed(0)
    model = T.TinyTransformer(10, 8, 2, 1, max_len=6)
    before = [p.detach().clone() for p in model.parameters()]
    sizes = T.adam_first_step_sizes(model, T.reverse_task(8, 6, 10), 1e-2)
    assert sizes.numel() == sum(p.numel() for p in model.parameters())
    assert float(((sizes - 1).abs() < 0.01).double().mean()) > 0.9   # sign(g): the learning rate
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="token sequences"):
        T.adam_first_step_sizes(model, (torch.randn(4, 6), torch.zeros(4, 6).long()), 1e-2)


def test_first_step_output_change_is_one_adam_step():
    df = T.first_step_output_change(2, range(1), 1e-2, d=8, heads=2, batch=4, length=6, vocab=10)
    torch.manual_seed(0)
    model = T.TinyTransformer(10, 8, 2, 2, ln="post", max_len=6)
    x, y = T.reverse_task(4, 6, 10, seed=0)
    before = model(x).detach()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    T.sequence_loss(model(x), y).backward()
    opt.step()
    expected = float((model(x).detach() - before).pow(2).mean().sqrt())
    assert df.set_index("ln").change["post"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="lr"):
        T.first_step_output_change(1, range(1), -1.0)


def test_experiments_leave_the_global_generator_alone():
    state = torch.get_rng_state()
    T.ffn_gradient_profiles([1], range(1), d=8, heads=2, batch=4, length=5, vocab=6)
    T.first_step_output_change(1, range(1), 1e-3, d=8, heads=2, batch=4, length=5, vocab=6)
    T.train_sequences({"pre": {"ln": "pre"}}, range(1), vocab=6, length=5, d=8, heads=2, layers=1, steps=2)
    assert torch.equal(state, torch.get_rng_state())
