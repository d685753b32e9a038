"""helpers.normalization and helpers.normalization_plots: checked against torch and by hand."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from helpers import normalization as nz  # noqa: E402
from helpers import normalization_plots as figs  # noqa: E402
from helpers.data import Dataset, make_blobs  # noqa: E402
from helpers.hooks import capture  # noqa: E402
from helpers.models import mlp  # noqa: E402
from helpers.seed import seed_everything  # noqa: E402
from helpers.train import FitResult, batches  # noqa: E402


def reference_batch_norm(x, gamma, beta, running_mean, running_var, *, training, momentum=0.1, eps=1e-5,
                         unbiased_running=True):
    """BatchNorm written independently of the module (per-channel loop over axis 1)."""
    xc = x.transpose(0, 1).reshape(x.shape[1], -1)                 # channel, values
    if training:
        mean, var = xc.mean(1), xc.var(1, unbiased=False)
        running_mean.mul_(1 - momentum).add_(momentum * mean)
        running_var.mul_(1 - momentum).add_(momentum * (xc.var(1) if unbiased_running else var))
    else:
        mean, var = running_mean, running_var
    shape = [1, -1] + [1] * (x.dim() - 2)
    return gamma.view(shape) * (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps) + beta.view(shape)


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d(6), (32, 6)), (nn.BatchNorm2d(4), (8, 4, 5, 5))])
def test_compare_with_torch_accepts_batchnorm_and_rejects_a_biased_running_variance(layer, shape):
    assert nz.compare_with_torch(reference_batch_norm, layer, shape) < 1e-5

    def biased(*args, **kw):
        return reference_batch_norm(*args, unbiased_running=False, **kw)

    assert nz.compare_with_torch(biased, layer, shape) > 1e-3


def test_randomize_affine_draws_every_parameter():
    layer = nz.randomize_affine(nn.GroupNorm(2, 4))
    assert not torch.equal(layer.weight, torch.ones(4)) and not torch.equal(layer.bias, torch.zeros(4))


def test_per_worker_batchnorm_normalizes_each_block_on_its_own():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 2, 2) * 3 + 1
    ghost, whole = nz.PerWorkerBatchNorm2d(3, per_worker=2), nn.BatchNorm2d(3)
    out = ghost(x)
    for block in range(4):                                       # each pair is an ordinary BatchNorm
        part = x[2 * block: 2 * block + 2]
        expected = nn.functional.batch_norm(part, None, None, training=True)
        torch.testing.assert_close(out[2 * block: 2 * block + 2], expected)
    whole(x)
    assert not torch.allclose(ghost.running_var, whole.running_var)  # the workers' average, not the whole's
    ghost.eval()
    torch.testing.assert_close(ghost(x), nn.functional.batch_norm(x, ghost.running_mean, ghost.running_var))
    with pytest.raises(ValueError, match="per_worker=3"):
        nz.PerWorkerBatchNorm2d(3, per_worker=3).train()(x)


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (96,), generator=g)
    x = torch.randn(96, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1) * 0.3
    return Dataset("toy images", x[:64], y[:64], x[64:], y[64:], 10)


def test_cnn_runs_memoize_and_merge_settings_that_cannot_split(images):
    runs = nz.CNNRuns(images, steps=3, batch_size=16, eval_every=3)
    a = runs("batch", per_worker=4)
    assert isinstance(a, FitResult) and runs("batch", per_worker=4) is a
    assert isinstance(a.model.conv1.norm, nz.PerWorkerBatchNorm2d) and a.model.conv1.norm.per_worker == 4
    assert runs("batch", per_worker=16) is runs("batch")              # one worker: an ordinary run
    assert runs("group", per_worker=2) is runs("group")
    assert len(runs.runs) == 3
    with pytest.raises(ValueError, match="norm='bogus'"):
        runs("bogus")


def test_label_probability_and_accuracy_in_train_mode(images):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.BatchNorm1d(10))
    net.eval()
    p = nz.label_probability(net, images.x_test, images.y_test, 0, torch.tensor([1, 2]))
    assert p == pytest.approx(net(images.x_test[:1]).softmax(1)[0, images.y_test[0]].item(), abs=1e-6)
    before = net[2].running_mean.clone()
    whole = nz.accuracy_in_train_mode(net, images.x_test, images.y_test, batch_size=len(images.x_test))
    batch = nn.functional.batch_norm(net[1](net[0](images.x_test)), None, None, net[2].weight, net[2].bias,
                                     training=True)
    assert whole == pytest.approx((batch.argmax(1) == images.y_test).float().mean().item())
    assert torch.equal(net[2].running_mean, before) and not net.training   # the model is untouched


def test_fixed_batch_run_and_outcomes():
    blobs = make_blobs(64, 10, 64, seed=0)
    data = (blobs.x_train[:32], blobs.y_train[:32])
    ok = nz.fixed_batch_run(data, "relu", "batch", lr=0.1, steps=40)
    assert nz.outcome(ok) == "fits"
    assert nz.outcome(ok, fits=1.01) == "stalls"
    bad = nz.fixed_batch_run(data, "relu", None, lr=1.0, scale=50.0, steps=20)
    assert bad.status == "diverged" and nz.outcome(bad) == "diverges"
    rows, counts = nz.outcome_counts({("relu", "batch", 0): ok, ("relu", None, 0): bad, ("relu", None, 1): bad})
    assert rows.net.tolist() == ["ReLU + BatchNorm", "ReLU", "ReLU"]
    assert counts.loc["ReLU"].tolist() == [2, 0, 0, 2] and counts.loc["ReLU + BatchNorm", "fits"] == 1
    g = nz.grad_sum(ok)
    assert len(g) == 40 and nz.fall(ok) == pytest.approx(g.max() / g.iloc[-1])


def test_zero_share_counts_exact_zeros_before_the_last_layer():
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]))
        net[0].bias.zero_()
    assert nz.zero_share(net, torch.tensor([[1.0, 2.0], [-1.0, 3.0]])) == 0.5


def test_map_summary_and_lr_helpers():
    grid = pd.DataFrame([{"BatchNorm": bn, "init scale": s, "learning rate": lr, "accuracy": acc}
                         for bn, s, lr, acc in [(False, 1.0, 0.1, 0.95), (False, 1.0, 1.0, 0.1), (False, 2.0, 0.1, 0.5),
                                                (True, 1.0, 0.1, 0.99), (True, 1.0, 1.0, 0.897),
                                                (True, 2.0, 0.1, 0.97), (False, 2.0, 1.0, 0.0),
                                                (True, 2.0, 1.0, 0.95)]])
    m = nz.map_summary(grid, 0.9, lr=0.1)
    assert m.ok.to_dict() == {False: 1, True: 3}
    assert m.spread_at[False] == pytest.approx(0.45) and m.spread_at[True] == pytest.approx(0.02)
    assert m.best_lr_without == 0.1 and len(m.high) == 2 and m.high_trains.tolist() == [False, True]
    assert m.near.accuracy.tolist() == [0.897] and m.short.accuracy.tolist() == [0.897]
    assert m.small_lr.to_dict() == {1.0: 0.99, 2.0: 0.97}
    assert nz.lrs_that_train(grid, 1.0, 0.9) == [0.1] and nz.lrs_that_train(grid, 2.0, 0.9, True) == [0.1, 1.0]
    assert nz.lr_range([]) == "at none" and nz.lr_range([0.01]) == "only at learning rate 0.01"
    assert nz.lr_range([0.1, 0.3]) == "at learning rates 0.1–0.3"


def test_drift_stats_by_hand():
    run = pd.DataFrame({"p15": [np.array([0.0, 0.0]), np.array([1.0, 0.0])],
                        "p50": [np.array([1.0, 1.0]), np.array([3.0, 1.0])],
                        "p85": [np.array([2.0, 2.0]), np.array([5.0, 4.0])]})
    drift, growth = nz.drift_stats(run)
    assert drift == pytest.approx((2 / 3 + 0 / 3) / 2)                  # |Δ median| / mean spread, per unit
    assert growth == pytest.approx(np.median([4 / 2, 4 / 2]))


def test_ioffe_run_percentiles_are_of_the_training_batch():
    data = make_blobs(200, 4, 64, seed=1)
    # one step: it is also fit's final evaluation, whose forward passes must not be what is recorded
    run = nz.ioffe_run(data, "batch", seed=3, steps=1, every=1)
    seed_everything(3)                                         # rebuild the net and its first batch
    net = mlp(64, 10, depth=3, width=100, activation="sigmoid", norm="batch")
    idx = next(batches(len(data.x_train), 60, seed_everything(3), "random"))
    with capture({"z": net.hidden3.act}, what="input") as seen:
        net(data.x_train[idx])
    q = torch.quantile(seen["z"], torch.tensor([0.15, 0.5, 0.85]), dim=0)
    for k, col in enumerate(["p15", "p50", "p85"]):
        np.testing.assert_allclose(run[col].iloc[0], q[k].numpy(), rtol=1e-5, atol=1e-6)
    assert run.step.tolist() == [1] and 0 <= run.accuracy.iloc[0] <= 1


def test_ioffe_run_records_every_n_steps_and_summary():
    run = nz.ioffe_run(make_blobs(200, 4, 64, seed=1), None, steps=30, every=10)
    assert run.step.tolist() == [1, 10, 20, 30] and run.p50.iloc[0].shape == (100,)
    assert (np.stack(run.p15) <= np.stack(run.p50)).all() and (np.stack(run.p50) <= np.stack(run.p85)).all()
    summary = nz.ioffe_summary({(None, 0): run}, step=10)
    assert list(summary.columns) == ["BatchNorm", "seed", "test acc., step 10", "test acc., step 30",
                                     "drift of median ÷ spread", "spread growth (×)"]
    assert summary.iloc[0, 4:].tolist() == pytest.approx(list(nz.drift_stats(run)))


def test_placement_runs_shape():
    data = make_blobs(120, 10, 64, seed=2)
    rows, nets = nz.placement_runs(data, ["tanh"], seeds=[0], steps=5)
    assert rows[["activation", "BatchNorm", "seed"]].values.tolist() == [["tanh", "before", 0], ["tanh", "after", 0]]
    assert nets["tanh", "after", 0].hidden1.norm_position == "after"
    with pytest.raises(ValueError, match="positions='middle'"):
        nz.placement_runs(data, ["tanh"], positions=["middle"], seeds=[0], steps=1)


def test_figures_draw_what_they_are_given():
    fig = figs.axes_figure()
    assert [ax.get_title() for ax in fig.axes] == ["BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm"]
    grid = pd.DataFrame([{"BatchNorm": bn, "init scale": s, "learning rate": lr, "accuracy": 0.95 if bn else 0.2}
                         for bn in [False, True] for s in [1.0, 2.0] for lr in [0.1, 1.0]])
    fig = figs.trainable_map(grid, 0.9, "map")
    outlined = [len(ax.patches) for ax in fig.axes[:2]]
    assert outlined == [0, 4]
    sweep = pd.DataFrame({"normalization": ["BatchNorm"] * 2 + ["none"] * 2, "per worker": [2, 64] * 2,
                          "test error": [0.5, 0.05, 0.1, 0.1]})
    ax = figs.error_by_workers_figure(sweep).axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["BatchNorm", "none"]
    forgot = pd.DataFrame({"evaluation batch": [1, 64], "accuracy": [0.3, 0.9]})
    assert figs.eval_mode_figure(forgot, 0.95).axes[0].get_ylim() == (0, 1.02)
    with pytest.raises(ValueError, match="lacks the columns"):
        figs.placement_figure(pd.DataFrame({"x": [1]}))
    plt.close("all")
