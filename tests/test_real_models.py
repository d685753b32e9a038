"""The health report and the monitor on the models practitioners use (helpers.zoo): Hugging Face BERT,
GPT-2, ViT, ResNet and ConvNeXt built from configs with random weights (no download), nn.LSTM,
nn.TransformerEncoder and a torchvision-style ResNet. For each: every nonlinearity call and every
trainable matrix accounted for, no finding with its usual optimizer, the model unchanged, no hook left."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import helpers
from helpers import zoo
from helpers.monitor import Monitor

pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore")


def n_hooks(model: nn.Module) -> int:
    modules = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                  for m in model.modules())
    return modules + sum(len(p._backward_hooks or {}) for p in model.parameters())


def state(model: nn.Module) -> dict:
    return {"tensors": {k: v.clone() for k, v in model.state_dict().items()},
            "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
            "modes": {n: m.training for n, m in model.named_modules()},
            "rng": torch.get_rng_state(), "hooks": n_hooks(model)}


def assert_unchanged(before: dict, after: dict) -> None:
    assert before["tensors"].keys() == after["tensors"].keys()
    for k, v in before["tensors"].items():
        assert torch.equal(v, after["tensors"][k]), k
    for k, g in before["grads"].items():
        assert (g is None and after["grads"][k] is None) or torch.equal(g, after["grads"][k]), k
    assert before["modes"] == after["modes"] and torch.equal(before["rng"], after["rng"])
    assert before["hooks"] == after["hooks"]


@pytest.fixture(scope="module", params=zoo.NAMES)
def specimen(request):
    return zoo.build(request.param)


def usual(s: zoo.Specimen):
    return s.optimizer([p for p in s.model.parameters() if p.requires_grad])


def test_everything_seen_nothing_flagged_model_unchanged(specimen):
    s = specimen
    before = state(s.model)
    rep = helpers.report(s.model, s.data, optimizer=usual(s))
    assert_unchanged(before, state(s.model))
    acts = rep.layers[rep.layers.kind == "activation"]
    assert len(acts) == s.calls, list(acts.layer)
    present = [n for n, p in s.model.named_parameters() if p.requires_grad and p.ndim >= 2]
    seen = rep.layers[rep.layers.kind == "weight"]
    assert len(seen) == len(present) >= s.matrices, list(seen.layer)
    assert rep.ok, rep.summary()


def test_monitor_on_a_training_step(specimen):
    s = specimen
    model = copy.deepcopy(s.model)
    opt = usual(zoo.Specimen(s.name, model, s.data, s.optimizer, s.calls, s.matrices, s.traits))
    batch = helpers.inputs.as_batches(s.data, n_batches=1, batch_size=8)[0]
    with Monitor(model, every=1) as mon:
        for _ in range(2):
            out = model(*batch.args, **batch.kwargs)
            logits, loss = helpers.collect.split_output(out)
            if loss is None:
                loss = nn.functional.cross_entropy(logits, batch.target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert n_hooks(model) == n_hooks(s.model)
    frame = mon.to_frame()
    assert not frame.duplicated(["step", "layer", "quantity"]).any()  # one row per call site
    grads = frame[frame.quantity == "grad_norm"].layer.nunique()
    assert grads == sum(1 for p in model.parameters() if p.requires_grad and p.ndim >= 2)


def test_reused_relu_module_gives_one_row_per_call_site():
    s = zoo.build("resnet_basic")
    rep = helpers.report(s.model, s.data, optimizer=usual(s))
    assert {"3.relu", "3.relu#2", "4.relu", "4.relu#2"} <= set(rep.layers.layer)
    with torch.no_grad():  # kill the second call site only: the block's output
        s.model[4].bn2.weight.fill_(1.0)
        s.model[4].bn2.bias.fill_(-100.0)
    dead = helpers.report(s.model, s.data, optimizer=usual(s))
    assert "4.relu#2" in dead.flagged("dead") and "4.relu" not in dead.flagged("dead")


def test_frozen_parameters_skipped_with_a_note():
    s = zoo.build("bert")
    for p in s.model.bert.embeddings.parameters():
        p.requires_grad_(False)
    rep = helpers.report(s.model, s.data, optimizer=usual(s))
    assert any("3 frozen weight matrices" in n for n in rep.notes)
    assert not any("embeddings" in name for name in rep.layers.layer)
    with Monitor(s.model) as mon:  # no hook on a tensor that needs no gradient
        s.model(**s.data).loss.backward()
    assert n_hooks(s.model) == 0 and len(mon.to_frame())


def test_an_error_inside_the_model_leaves_nothing_behind():
    s = zoo.build("transformer")
    before = state(s.model)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    s.model.head.forward = broken
    with pytest.raises(RuntimeError, match="boom"):
        helpers.report(s.model, s.data)
    del s.model.head.forward
    assert_unchanged(before, state(s.model))
    with pytest.raises(RuntimeError, match="boom"), Monitor(s.model):
        s.model.head.forward = broken
        s.model(s.data[0])
    del s.model.head.forward
    assert n_hooks(s.model) == 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_models(dtype):
    s = zoo.build("transformer")
    model = s.model.to(dtype)
    rep = helpers.report(model, s.data, optimizer="adam", lr=1e-3)
    assert len(rep.layers[rep.layers.kind == "activation"]) == s.calls
    assert rep.layers[rep.layers.kind == "weight"].grad_rms.notna().all()


def test_zero_initialised_head_is_standard_practice():
    s = zoo.build("vit")  # timm's ViT zero-initialises its head
    nn.init.zeros_(s.model.classifier.weight)
    rep = helpers.report(s.model, s.data, optimizer=usual(s))
    assert rep.ok, rep.summary()
    assert any("zero-initialised weights (classifier)" in n for n in rep.notes)
    assert any("behind zero-initialised" in n for n in rep.notes)
    broken = zoo.build("lstm")  # every weight zero is a broken init, not a zero-initialised branch
    with torch.no_grad():
        for p in broken.model.parameters():
            p.zero_()
    assert not helpers.report(broken.model, broken.data, optimizer=usual(broken)).ok
