"""helpers.batchnorm and helpers.senet: running statistics against torch's own, probes, the SE net."""

from __future__ import annotations

import copy
import math

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import batchnorm, train
from helpers.data import Dataset
from helpers.senet import SENet, SqueezeExcite


def tiny_images(n_train: int = 96, n_test: int = 40, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, 1, 8, 8, generator=g) * 2 + 0.5
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return Dataset("tiny", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 10)


def se_net(seed: int = 0, n_blocks: int = 2, **arch) -> SENet:
    torch.manual_seed(seed)
    return SENet(channels=8, n_blocks=n_blocks, **arch)


def test_bn_layers_finds_only_layers_with_running_stats():
    assert [n for n, _ in batchnorm.bn_layers(se_net())] == [
        "stem.1", "blocks.0.bn1", "blocks.0.bn2", "blocks.1.bn1", "blocks.1.bn2"]
    assert batchnorm.bn_layers(se_net(bn=False)) == []
    net = nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False), nn.BatchNorm1d(3))
    assert [n for n, _ in batchnorm.bn_layers(net)] == ["1"]
    with pytest.raises(TypeError, match="model"):
        batchnorm.bn_layers("net")


def test_with_running_stats_sets_a_copy_and_checks_shapes():
    net = se_net()
    stats = [(torch.full_like(m, 0.5), torch.full_like(v, 3.0)) for m, v in batchnorm.running_stats(net)]
    other = batchnorm.with_running_stats(net, stats)
    assert all(torch.equal(m.running_mean, torch.full_like(m.running_mean, 0.5)) for _, m in batchnorm.bn_layers(other))
    assert all(torch.equal(m.running_var, torch.ones_like(m.running_var)) for _, m in batchnorm.bn_layers(net))
    with pytest.raises(ValueError, match="stats has 1"):
        batchnorm.with_running_stats(net, stats[:1])
    with pytest.raises(ValueError, match="stem.1"):
        batchnorm.with_running_stats(net, [(torch.zeros(2), torch.ones(2))] + stats[1:])


def test_recalibrated_in_one_pass_equals_torch_cumulative_average():
    net, x = se_net(), tiny_images().x_train
    ours = batchnorm.recalibrated(net, x)
    theirs = copy.deepcopy(net)
    for _, bn in batchnorm.bn_layers(theirs):
        bn.reset_running_stats()
        bn.momentum = None  # torch's cumulative average: one batch gives that batch's statistics
    with torch.no_grad():
        theirs.train()(x)
    for (_, a), (_, b) in zip(batchnorm.bn_layers(ours), batchnorm.bn_layers(theirs), strict=True):
        torch.testing.assert_close(a.running_mean, b.running_mean, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(a.running_var, b.running_var, atol=1e-5, rtol=1e-5)
    # the original is untouched and the copy keeps its flags
    assert all(torch.equal(m.running_var, torch.ones_like(m.running_var)) for _, m in batchnorm.bn_layers(net))
    assert ours.training == net.training


def test_recalibrated_in_chunks_gives_the_exact_mean_and_variance_over_the_data():
    net, x = se_net(), tiny_images().x_train
    net.eval()
    ours = batchnorm.recalibrated(net, x, batch_size=20)  # 96 = 4 × 20 + 16: uneven chunks
    with torch.no_grad():
        first = net.stem[0](x).double()  # the first BatchNorm's input does not depend on any statistics
    torch.testing.assert_close(ours.stem[1].running_mean, first.mean((0, 2, 3)).float(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours.stem[1].running_var, first.var((0, 2, 3)).float(), atol=1e-6, rtol=1e-5)
    assert not ours.training and not ours.stem[1].training
    # torch's own cumulative average over the same chunks weights each chunk equally: not exact
    theirs = copy.deepcopy(net)
    theirs.stem[1].reset_running_stats()
    theirs.stem[1].momentum = None
    with torch.no_grad():
        for chunk in x.split(20):
            theirs.stem[1].train()(theirs.stem[0](chunk))
    assert not torch.allclose(theirs.stem[1].running_var, ours.stem[1].running_var, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        batchnorm.recalibrated(net, x, batch_size=1)


def test_running_average_at_torch_momentum_reproduces_torch_running_stats():
    data = tiny_images()
    net = se_net()
    average, slow = batchnorm.RunningAverage(momentum=0.1), batchnorm.RunningAverage()
    train.fit(net, data, steps=5, batch_size=32, optimizer="adam", lr=1e-3, progress=False, callbacks=[average, slow])
    for (mean, var), (_, bn) in zip(average.stats, batchnorm.bn_layers(net), strict=True):
        torch.testing.assert_close(mean, bn.running_mean, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(var, bn.running_var, atol=1e-6, rtol=1e-5)
    # Keras's momentum: a fifth of the way there after 5 steps (1 - 0.99⁵ ≈ 0.049 of the batch statistics)
    assert (slow.stats[0][1] - 1).abs().max() < (average.stats[0][1] - 1).abs().max()
    assert all(len(bn._forward_pre_hooks) == 0 for _, bn in batchnorm.bn_layers(net))


def test_running_average_ignores_probes_copies_and_eval_passes():
    data, net = tiny_images(), se_net()
    with batchnorm.RunningAverage(momentum=0.5).attach(net) as average:
        before = [m.clone() for m, _ in average.stats]
        with torch.no_grad():
            net.train()(data.x_train)  # a probe: no gradients
        net.eval()(data.x_train)  # evaluation mode
        copy.deepcopy(net).train()(data.x_train)  # a copy carries the hook, but is not the model
        assert all(torch.equal(a, m) for a, (m, _) in zip(before, average.stats))
        net.train()(data.x_train)
        assert not torch.equal(before[0], average.stats[0][0])
    assert len(net.stem[1]._forward_pre_hooks) == 0
    with pytest.raises(ValueError, match="momentum"):
        batchnorm.RunningAverage(momentum=0.0)


def test_probe_measures_without_changing_the_model():
    data, net = tiny_images(), se_net()
    state = copy.deepcopy(net.state_dict())
    found = batchnorm.probe(net, data, *net.watched(), train_mode=True)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert net.training
    with torch.no_grad():  # the same pass written out: batch statistics, the middle block's gate
        out = net.train()(data.x_test)
        b = net.blocks[1]
        h = b.bn2(b.conv2(b.act1(b.bn1(b.conv1(net.blocks[0](net.stem(data.x_test)))))))
        gate = torch.sigmoid(b.se.fc2(torch.relu(b.se.fc1(h.mean((2, 3))))))
        act = h * gate[:, :, None, None]
    assert found["gate_mean"] == pytest.approx(float(gate.mean()), rel=1e-5)
    assert found["std"] == pytest.approx(float(act.std()), rel=1e-5)
    assert found["accuracy"] == pytest.approx(float((out.argmax(1) == data.y_test).float().mean()))
    assert found["min"].shape == (2, 8) and (found["min"] <= found["max"]).all()
    assert 0 <= found["gate_saturated"] <= 1
    no_se = batchnorm.probe(se_net(gate=None), data, "blocks.1", train_mode=False)
    assert math.isnan(no_se["gate_mean"]) and no_se["std"] > 0


def test_probe_reads_the_watched_output():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    found = batchnorm.probe(net, (x, y), net[1], n_images=3)
    with torch.no_grad():
        hidden = torch.relu(net[0](x))
    assert found["std"] == pytest.approx(float(hidden.std()))
    assert (found["max"] == hidden[:3].numpy()).all()


def test_mode_probe_records_four_modes_per_epoch_and_one_without_batchnorm():
    data = tiny_images()
    per_epoch = len(data.x_train) // 32
    four = ["train mode", "PyTorch 0.1", "Keras 0.01", "recalibrated"]
    for arch, modes in (({}, four), ({"bn": False}, ["train mode"])):
        net = se_net(**arch)
        probe = batchnorm.ModeProbe(data, per_epoch, *net.watched())
        train.fit(net, data, steps=2 * per_epoch, batch_size=32, optimizer="adam", lr=1e-3, progress=False,
                  callbacks=[probe])
        log = probe.frame()
        assert log.epoch.tolist() == [1] * len(modes) + [2] * len(modes)
        assert log["mode"].tolist()[: len(modes)] == modes
    summary = batchnorm.mode_summary(log, from_epoch=2)
    assert summary.loc["train mode", "final accuracy"] == log.accuracy.iloc[-1]
    assert list(summary.columns) == ["std: last / max", "final accuracy", "lowest, epochs 2+"]


def test_figures_and_their_checks():
    rows = [{"seed": s, "epoch": e, "mode": m, "accuracy": 0.1 * e, "std": 1.0 + e,
             "min": -torch.ones(2, 3).numpy(), "max": torch.ones(2, 3).numpy()}
            for s in (0, 1) for e in (1, 2) for m in ("train mode", "Keras 0.01")]
    logs = pd.DataFrame(rows)
    fig = batchnorm.range_figure(logs[logs.seed == 0], {"train mode": "a", "Keras 0.01": "b"})
    assert len(fig.axes) == 4
    assert fig.axes[2].get_ylim() == fig.axes[3].get_ylim()  # the twins share their limits
    plt.close(fig)
    fig = batchnorm.accuracy_figure(logs)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "train mode (batch statistics)", "Keras 0.01 (running averages)"]
    plt.close(fig)
    with pytest.raises(ValueError, match="panels"):
        batchnorm.range_figure(logs, {"recalibrated": "c"})


def test_senet_gates_and_arguments():
    torch.manual_seed(0)
    se = SqueezeExcite(8, gate="2sigmoid")
    nn.init.zeros_(se.fc2.weight)
    nn.init.zeros_(se.fc2.bias)
    x = torch.randn(3, 8, 4, 4)
    torch.testing.assert_close(se(x), x)  # 2·σ(0) = 1: a fresh 2·sigmoid gate passes the signal
    se.scale = 1.0
    torch.testing.assert_close(se(x), x / 2)  # σ(0) = 0.5 halves it
    assert se_net(n_blocks=3).watched() == ("blocks.1.se", "blocks.1.se.gate")
    assert SENet(n_blocks=2, gate=None).watched() == ("blocks.1", None)
    with pytest.raises(ValueError, match="gate"):
        SENet(gate="tanh")
    with pytest.raises(ValueError, match="n_blocks"):
        SENet(n_blocks=0)
    plain = SENet(bn=False, residual=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert plain(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
