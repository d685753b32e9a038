"""helpers.normalization_grids: every grid against the single calls it is made of."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from helpers import normalization_grids as ng
from helpers.data import make_blobs
from helpers.normalization import accuracy_in_train_mode, fixed_batch_run
from helpers.train import FitResult


@pytest.fixture(scope="module")
def batch():
    blobs = make_blobs(64, n_features=4)
    return blobs.x_train, blobs.y_train


def test_damper_runs_are_the_fixed_batch_runs(batch):
    runs = ng.damper_runs(batch, {None: [0, 1], "batch": [0]}, lr=0.01, steps=3)
    assert sorted(runs, key=str) == sorted([(a, n, s) for a in ("relu", "leaky_relu")
                                            for n, seeds in ((None, [0, 1]), ("batch", [0])) for s in seeds], key=str)
    direct = fixed_batch_run(batch, "relu", None, lr=0.01, seed=1, steps=3)
    assert runs["relu", None, 1].final("eval_loss", "train") == pytest.approx(direct.final("eval_loss", "train"))
    with pytest.raises(ValueError):
        ng.damper_runs(batch, {None: [0]}, lr=0.0)


def test_sweep_runs_keys_and_one_cell(batch):
    runs = ng.sweep_runs(batch, lrs=[0.1, 1.0], scales=[0.5, 2.0], steps=2)
    assert len(runs) == 8 and (True, 2.0, 1.0) in runs
    direct = fixed_batch_run(batch, "relu", "batch", 1.0, scale=2.0, steps=2)
    assert runs[True, 2.0, 1.0].final("accuracy", "train") == pytest.approx(direct.final("accuracy", "train"))


class FakeRuns:
    """A CNNRuns stand-in: accuracy and loss curve made from the arguments."""

    def __init__(self):
        self.calls = []

    def __call__(self, norm, per_worker=None, channels=(16, 32), seed=0):
        self.calls.append((norm, per_worker, tuple(channels), seed))
        acc = 0.5 if norm == "batch" and per_worker == 2 else 0.9 + seed / 100
        loss = [1.0 + seed] * 40 if per_worker == 2 else [0.1] * 40
        rows = [(i, "train", "loss", v) for i, v in enumerate(loss)] + [(40, "test", "accuracy", acc)]
        history = pd.DataFrame(rows, columns=["step", "split", "metric", "value"])
        return FitResult(history, "ok", None, 40, nn.Identity())


def test_error_by_workers_seed_errors_and_late_losses():
    runs = FakeRuns()
    frame = ng.error_by_workers(runs, {"BatchNorm": "batch", "none": None}, [2, 64], channels=(4,))
    assert frame["test error"].round(3).tolist() == [0.5, 0.1, 0.1, 0.1]
    assert runs.calls[0] == ("batch", 2, (4,), 0)
    seeds = ng.seed_errors(runs, [0, 1], channels=(4,))
    assert seeds["BatchNorm, 2 per worker"].tolist() == pytest.approx([0.5, 0.5])
    assert seeds["GroupNorm"].tolist() == pytest.approx([0.1, 0.09])
    late = ng.late_losses(runs, {2: [0, 1], 64: [0]}, channels=(4,))
    assert late[2].tolist() == pytest.approx([1.0, 2.0]) and late[64, 0] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        ng.late_loss(runs("batch"), last=0)


def test_forgotten_eval_is_accuracy_in_train_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)).eval()
    x, y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    frame = ng.forgotten_eval(net, x, y, [2, 30])
    assert frame.accuracy.tolist() == pytest.approx([accuracy_in_train_mode(net, x, y, batch_size=b) for b in (2, 30)])
