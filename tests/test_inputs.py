"""helpers.inputs and the report on the data formats practitioners hold: each accepted, or refused
with a message that says what to pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import report
from helpers.inputs import as_batches
from helpers.models import mlp


def data(n=64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def net():
    torch.manual_seed(0)
    return mlp(8, 3, depth=2, width=16)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x1, x2):
        return self.head(torch.relu(self.a(x1) + self.b(x2)))


class DictModel(nn.Module):
    """Keyword inputs and a dict output with its own loss, as a Hugging Face model."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body, self.head = nn.Linear(8, 16), nn.Linear(16, 3)

    def forward(self, features, labels=None):
        logits = self.head(nn.functional.gelu(self.body(features)))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def test_every_format_gives_the_same_examples():
    x, y = data()
    pair = as_batches((x, y), n_batches=1, batch_size=64)[0]
    numpy = as_batches(x.numpy().astype(np.float64), y.numpy(), n_batches=1, batch_size=64)[0]
    assert numpy.args[0].dtype == torch.float32  # NumPy's float64 becomes the models' float32
    assert torch.equal(numpy.args[0], pair.args[0]) and torch.equal(numpy.target, pair.target)
    loader = as_batches(DataLoader(TensorDataset(x, y), batch_size=16), n_batches=2)
    assert [len(b) for b in loader] == [16, 16] and torch.equal(loader[0].args[0], x[:16])
    dataset = as_batches(TensorDataset(x, y), n_batches=2, batch_size=20)
    assert [len(b) for b in dataset] == [20, 20]
    assert {tuple(r.tolist()) for b in dataset for r in b.args[0]} <= {tuple(r.tolist()) for r in x}
    multi = as_batches(((x, x), y), n_batches=1, batch_size=64)[0]
    assert len(multi.args) == 2 and torch.equal(multi.target, pair.target)


def test_report_on_each_format():
    x, y = data()
    base = report(net(), (x, y), batch_size=64, n_batches=1)
    assert report(net(), DataLoader(TensorDataset(x, y), batch_size=64), n_batches=1).loss == pytest.approx(base.loss)
    assert report(net(), (x.numpy(), y.numpy()), batch_size=64, n_batches=1).loss == pytest.approx(base.loss)
    two = report(TwoInputs(), ((x, x), y))
    assert {"a", "b", "TwoInputs:relu", "head"} <= set(two.layers.layer)
    own = report(DictModel(), {"features": x, "labels": y})
    assert any("the model's own" in n for n in own.notes)
    assert "body" in set(own.layers.layer) and "DictModel:gelu" in set(own.layers.layer)
    with_target = report(DictModel(), ({"features": x}, y))
    assert with_target.loss == pytest.approx(own.loss, rel=1e-5)  # the same cross-entropy, computed by the report


def test_refusals_say_what_to_pass():
    x, y = data()
    with pytest.raises(ValueError, match=r"1-D tensor of shape \(64,\).*x\[None\].*x\[:, None\]"):
        report(net(), x[:, 0], target=y)
    with pytest.raises(ValueError, match="target must be None when data is a DataLoader"):
        report(net(), DataLoader(TensorDataset(x, y)), target=y)
    with pytest.raises(TypeError, match="data must be .*a DataLoader"):
        report(net(), "pixels.png")


def test_guesses_become_notes():
    x, y = data()
    one = report(net(), (x[:1], y[:1]))
    assert "collapsed" not in one.problems and any("one example" in n for n in one.notes)
    floats = report(nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1)), (x, torch.randn(64, 1)))
    assert any("mean squared error" in n for n in floats.notes)
    guessed = report(net(), (x, y))
    assert any("update ratios assume SGD at lr 0.1" in n for n in guessed.notes)
    model = net()
    told = report(model, (x, y), optimizer=torch.optim.AdamW(model.parameters(), lr=3e-4))
    assert told.optimizer == "adam" and told.lr == 3e-4 and not any("assume" in n for n in told.notes)
