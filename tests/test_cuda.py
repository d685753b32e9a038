"""The monitor and the health report on a CUDA device: the same findings and statistics as on the CPU,
the model left exactly as it was (on its device), no hook left behind, also when the report fails.

Skipped without a GPU (CI has none); run on one with ``python -m pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import helpers
from helpers import zoo
from helpers.data import load_digits
from helpers.models import mlp
from helpers.monitor import Monitor
from tests.test_real_models import assert_unchanged, n_hooks, state

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
              pytest.mark.filterwarnings("ignore")]
CUDA = torch.device("cuda")


def on_cuda(s: zoo.Specimen) -> nn.Module:
    return copy.deepcopy(s.model).to(CUDA)


@pytest.mark.parametrize("name", zoo.NAMES)
def test_report_on_cuda_agrees_with_the_cpu_and_leaves_the_model(name):
    s = zoo.build(name)
    cpu = helpers.report(s.model, s.data, optimizer=s.optimizer([p for p in s.model.parameters()
                                                                  if p.requires_grad]))
    model = on_cuda(s)
    before = state(model)
    gpu = helpers.report(model, s.data, optimizer=s.optimizer([p for p in model.parameters() if p.requires_grad]))
    assert_unchanged(before, state(model))
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert gpu.problems == cpu.problems and gpu.ok == cpu.ok, (gpu.summary(), cpu.summary())
    assert list(gpu.layers.layer) == list(cpu.layers.layer)
    if any(isinstance(m, nn.Dropout) and m.p > 0 for m in s.model.modules()):
        return  # dropout draws from each device's own generator: the statistics differ by design
    for column in ("act_std", "grad_rms"):
        if column in cpu.layers:
            a, b = cpu.layers[column].to_numpy(float), gpu.layers[column].to_numpy(float)
            both = np.isfinite(a) & np.isfinite(b)
            np.testing.assert_allclose(b[both], a[both], rtol=0.05, atol=1e-6, err_msg=column)


def test_report_that_fails_on_cuda_leaves_no_hook():
    model = mlp(64, 10, depth=3, width=32).to(CUDA)
    before = state(model)

    def broken_loss(logits, target):
        raise RuntimeError("a loss that fails")

    with pytest.raises(RuntimeError, match="a loss that fails"):
        helpers.report(model, load_digits(), loss_fn=broken_loss)
    assert_unchanged(before, state(model))


def test_monitor_during_cuda_training():
    torch.manual_seed(0)
    model = mlp(64, 10, depth=4, width=32)
    result = helpers.train.fit(model, load_digits(), steps=60, lr=0.1, device="cuda", progress=False,
                               monitor={"every": 10})
    assert result.status == "ok" and next(model.parameters()).device.type == "cuda"
    frame = result.monitor.to_frame()
    assert len(frame) > 0 and set(frame.step) >= {10, 60}
    measured = frame[frame.quantity != "frac_saturated"]  # NaN for ReLU: saturation is not defined
    assert np.isfinite(measured.value.to_numpy(float)).all()
    assert n_hooks(model) == 0


def test_monitor_context_on_cuda_removes_its_hooks():
    model = mlp(64, 10, depth=3, width=16).to(CUDA)
    x, y = load_digits().x_train[:64].to(CUDA), load_digits().y_train[:64].to(CUDA)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Monitor(model, every=1):
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        assert n_hooks(model) > 0
    assert n_hooks(model) == 0
