"""Tests of helpers.report: the health report on any module tree, exactly non-invasive,
with each finding raised by a model that has the problem and absent from a healthy one."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

import helpers  # noqa: E402
from helpers import init, models  # noqa: E402
from helpers.data import load_digits  # noqa: E402
from helpers.health import HealthReport, report  # noqa: E402
from helpers.rules import PROBLEMS  # noqa: E402


def batch(n=256, features=64, classes=10, seed=0, image=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g) if image else torch.randn(n, features, generator=g)
    return x, torch.randint(0, classes, (n,), generator=g)


def healthy_mlp(depth=6, residual=False, seed=0):
    net = models.mlp(64, 10, depth=depth, width=64, activation="relu", residual=residual)
    # residual branches start small, or the sum of the branches grows with depth
    return init.init_(net, "kaiming_normal", activation="relu", seed=seed, scale=0.3 if residual else 1.0)


class ResidualCNN(nn.Module):
    """A small ResNet-style net: a stem, two residual blocks with BatchNorm, a linear head."""

    def __init__(self, c=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                          nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
            for _ in range(2)
        )
        self.out_act = nn.ReLU()
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = self.out_act(h + block(h))  # one activation module used after every block
        return self.head(h.mean((2, 3)))


class Tree(nn.Module):
    """Layers in attributes and a ModuleDict, registered in an order different from the one
    they run in, with a dropout layer (random) and a shared activation of two widths."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(32, 10)  # registered first, runs last
        self.parts = nn.ModuleDict({"b": nn.Linear(48, 32), "a": nn.Linear(64, 48)})
        self.act = nn.Tanh()
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        h = self.drop(self.act(self.parts["a"](x)))
        h = self.act(self.parts["b"](h))
        return self.head(h)


# -- every kind of model ---------------------------------------------------------------------------
def test_mlp_layers_in_execution_order_and_healthy():
    rep = report(healthy_mlp(), batch())
    assert isinstance(rep, HealthReport)
    names = list(rep.layers.layer)
    assert names[:4] == ["hidden1.linear", "hidden1.act", "hidden2.linear", "hidden2.act"]
    assert names[-1] == "output"
    assert rep.ok, rep.summary()
    acts = rep.layers[rep.layers.kind == "activation"]
    assert acts.act_std.between(0.2, 2).all() and (acts.frac_saturated.isna()).all()
    weights = rep.layers[rep.layers.kind == "weight"]
    assert (weights.grad_norm > 0).all() and weights.update_ratio.between(1e-4, 0.1).all()


def test_cnn_with_batchnorm():
    torch.manual_seed(0)
    cnn = models.small_cnn(norm="batch")
    rep = report(cnn, batch(image=True), lr=0.05)
    assert list(rep.layers.layer) == ["conv1.conv", "conv1.act", "conv2.conv", "conv2.act", "output"]
    assert rep.ok, rep.summary()


def test_residual_models():
    torch.manual_seed(0)
    rep = report(ResidualCNN(), batch(image=True), lr=0.01)
    assert rep.ok, rep.summary()
    assert "out_act" in set(rep.layers.layer)  # a module used twice is one row
    assert rep.n_passes == 1
    rep = report(healthy_mlp(depth=8, residual=True), batch(), lr=0.01)
    assert len(rep.layers) == 17 and rep.ok, rep.summary()


def test_module_tree_not_sequential():
    torch.manual_seed(0)
    rep = report(Tree(), batch(), lr=0.05)
    # execution, not registration, order; the activation module runs twice: two call sites
    assert list(rep.layers.layer) == ["parts.a", "act", "parts.b", "act#2", "head"]
    act = rep.layers.set_index("layer").loc["act"]
    assert 0 <= act.frac_saturated < 0.5 and act.frac_dead == 0
    assert rep.ok, rep.summary()


# -- the model is left exactly as it was --------------------------------------------------------------
def snapshot_everything(model):
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "modes": {n: m.training for n, m in model.named_modules()},
        "rng": torch.get_rng_state(),
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
    }


def same(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and bool(((a == b) | (a.isnan() & b.isnan())).all())


def assert_same(before, after):
    assert before["state"].keys() == after["state"].keys()
    for k in before["state"]:
        assert same(before["state"][k], after["state"][k]), k
    for k in before["params"]:
        assert same(before["params"][k], after["params"][k]), k
    for k, g in before["grads"].items():
        assert (g is None) == (after["grads"][k] is None), k
        assert g is None or same(g, after["grads"][k]), k
    assert before["modes"] == after["modes"]
    assert torch.equal(before["rng"], after["rng"])
    assert before["hooks"] == after["hooks"]


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_model_not_modified(mode):
    torch.manual_seed(0)
    net = ResidualCNN()
    x, y = batch(image=True)
    nn.functional.cross_entropy(net(x), y).backward()  # gradients present, BN statistics moved
    net.eval()
    net.blocks[1].train()  # a mixed train/eval state must come back as it was
    for p in net.stem.parameters():
        p.grad = None  # and missing gradients must stay missing
    before = snapshot_everything(net)
    report(net, (x, y), n_batches=3, batch_size=64, mode=mode)
    assert_same(before, snapshot_everything(net))
    # BatchNorm running statistics really would have moved in train mode
    if mode == "train":
        net.train()
        net(x)
        assert not torch.equal(before["state"]["stem.1.running_mean"], net.state_dict()["stem.1.running_mean"])


def test_model_not_modified_with_dropout_and_failure():
    torch.manual_seed(0)
    tree = Tree()
    with torch.no_grad():
        tree.parts["a"].weight.fill_(float("nan"))
    before = snapshot_everything(tree)
    rep = report(tree, batch())
    assert "exploding" in rep.problems
    assert_same(before, snapshot_everything(tree))


# -- each finding, raised by a failing model and absent on a healthy one ----------------------------------
def failing(problem):
    """(model, data, report kwargs) that show ``problem``."""
    torch.manual_seed(0)
    data = batch()
    if problem == "dead":
        net = healthy_mlp(depth=3)
        with torch.no_grad():
            net.hidden2.linear.bias.fill_(-50.0)
        return net, data, {}
    if problem == "saturated":
        return init.init_(models.mlp(64, 10, depth=6, activation="tanh"), "normal", std=1.0, seed=0), data, {}
    if problem == "collapsed":
        return init.init_(models.mlp(64, 10, depth=6, activation="tanh"), "normal", std=0.01, seed=0), data, {}
    if problem == "vanishing":
        return models.mlp(64, 10, depth=10, activation="sigmoid"), data, {}
    if problem == "exploding":
        return init.init_(models.mlp(64, 10, depth=10), "kaiming_normal", scale=2.0, seed=0), data, {}
    if problem == "update_small":
        return healthy_mlp(), data, {"lr": 1e-7}
    if problem == "update_large":
        return healthy_mlp(), data, {"lr": 50.0}
    if problem == "weights_large":  # He's init × 10 under BatchNorm: the forward signal does not show it
        return init.init_(models.mlp(64, 10, depth=4, norm="batch"), "kaiming_normal", scale=10.0, seed=0), data, {}
    if problem == "init_loss":
        net = healthy_mlp()
        with torch.no_grad():
            net.output.weight.mul_(30.0)
        return net, data, {}
    if problem == "inputs_unscaled":
        return healthy_mlp(), (data[0] * 255, data[1]), {}
    if problem == "softmax_output":  # a softmax before F.cross_entropy, which applies its own
        return nn.Sequential(healthy_mlp(), nn.Softmax(dim=1)), data, {}
    if problem == "stale_batchnorm":  # running statistics from data of another scale and offset
        net = init.init_(models.mlp(64, 10, depth=3, norm="batch"), "kaiming_normal", seed=0)
        with torch.no_grad():
            for _ in range(20):
                net(data[0] * 4 + 3)
        return net, data, {}
    raise AssertionError(problem)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_each_problem_flagged(problem):
    model, data, kwargs = failing(problem)
    rep = report(model, data, **kwargs)
    assert problem in rep.problems, rep.summary()
    assert not rep.ok
    finding = next(f for f in rep.findings if f.problem == problem)
    assert finding.layer in set(rep.layers.layer) | {"loss", "input", "model", "output"}
    assert finding.basis  # where the threshold comes from
    assert finding.chapter.endswith(".ipynb") and finding.chapter in finding.message
    assert finding.message.startswith(finding.layer + ":")


@pytest.mark.parametrize("problem", PROBLEMS)
def test_each_problem_absent_on_healthy(problem):
    for model in (healthy_mlp(), init.init_(models.mlp(64, 10, depth=6, activation="tanh"), "xavier_normal",
                                            activation="tanh", seed=0)):
        rep = report(model, batch())
        assert problem not in rep.problems, rep.summary()


def test_dead_fraction_is_over_all_examples():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 0]]))
        net[0].bias.copy_(torch.tensor([0.0, -10.0, 0.0]))
    x = torch.zeros(8, 4)
    x[7, 1] = 20.0  # unit 1 fires on the last example only; unit 2 never; unit 0 never (x[:, 0] = 0)
    rep = report(net, (x, torch.zeros(8, dtype=torch.long)), batch_size=4, n_batches=2)
    relu = rep.layers.set_index("layer").loc["1"]
    assert relu.frac_dead == pytest.approx(2 / 3)  # units 0 and 2; unit 1 lives in the second batch only
    assert rep.flagged("dead") == ["1"]
    assert "8 examples" in rep.findings[0].message


def test_non_finite_is_exploding():
    net = healthy_mlp(depth=3)
    with torch.no_grad():
        net.hidden2.linear.weight[0, 0] = float("inf")
    rep = report(net, batch())
    assert "exploding" in rep.problems
    assert any("not finite" in f.message or "non-finite" in f.message for f in rep.findings)


def test_thresholds_are_arguments():
    model, data, _ = failing("dead")
    assert "dead" not in report(model, data, dead_fraction=1.0).problems
    tanh = init.init_(models.mlp(64, 10, depth=6, activation="tanh"), "xavier_normal", activation="tanh", seed=0)
    assert "saturated" not in report(tanh, batch()).problems
    assert "saturated" in report(tanh, batch(), saturated_fraction=0.0).problems
    rep = report(healthy_mlp(), batch(), update_ratio_range=(0.5, 1.0))
    assert rep.problems == {"update_small"}
    assert rep.thresholds["update_ratio_range"] == (0.5, 1.0)


# -- numbers checked against a direct computation -----------------------------------------------------
def test_gradient_and_update_ratio_match_direct_computation():
    net = healthy_mlp(depth=2)
    x, y = batch(128)
    rep = report(net, (x, y), lr=0.1, batch_size=128)
    net.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    w, g = net.hidden1.linear.weight, net.hidden1.linear.weight.grad
    row = rep.layers.set_index("layer").loc["hidden1.linear"]
    assert row.grad_norm == pytest.approx(float(g.norm()), rel=1e-5)
    assert row.grad_rms == pytest.approx(float(g.norm()) / math.sqrt(w.numel()), rel=1e-5)
    assert row.update_ratio == pytest.approx(0.1 * float(g.norm() / w.detach().norm()), rel=1e-5)
    adam = report(net, (x, y), lr=1e-3, optimizer="adam", batch_size=128).layers.set_index("layer")
    nnz = int((g != 0).sum())
    expected = 1e-3 * math.sqrt(nnz) / float(w.detach().norm())
    assert adam.loc["hidden1.linear"].update_ratio == pytest.approx(expected, rel=1e-5)
    act = rep.layers.set_index("layer").loc["hidden1.act"]
    h = net.hidden1(x).detach()
    assert act.act_mean == pytest.approx(float(h.mean()), rel=1e-5)
    assert act.act_std == pytest.approx(float(h.std()), rel=1e-5)


def test_inputs_dataset_pair_tensor_and_float_targets():
    digits = load_digits("standardized")
    net = healthy_mlp(depth=2)
    rep = report(net, digits)
    assert rep.n_examples == 512 and rep.n_passes == 2 and math.isfinite(rep.loss)
    alone = report(net, digits.x_train[:100])
    assert alone.n_examples == 100 and math.isnan(alone.loss) and alone.notes
    assert alone.layers.grad_norm.notna().any()
    regression = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    rep = report(regression, torch.randn(50, 3), target=torch.randn(50, 1))
    assert rep.loss > 0  # mean squared error chosen for float targets
    custom = report(regression, torch.randn(50, 3), target=torch.randn(50, 1), loss_fn=nn.functional.l1_loss)
    assert custom.loss > 0


def test_same_seed_same_report():
    digits = load_digits("standardized")
    a = report(healthy_mlp(), digits, seed=3).layers
    b = report(healthy_mlp(), digits, seed=3).layers
    assert a.equals(b)


def test_functional_activations_are_seen():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(64, 32), nn.Linear(32, 10)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    rep = report(Functional(), batch())
    assert list(rep.layers.layer) == ["a", "Functional:relu", "b"]  # the functional call is seen, named by its module
    assert rep.layers.set_index("layer").loc["Functional:relu"].frac_zero > 0.3
    bare = report(nn.Sequential(nn.Linear(64, 10)), batch())
    assert any("no nonlinearity ran" in n for n in bare.notes)


# -- bounded cost ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "n_batches", "batch_size", "passes"), [(1000, 2, 256, 2), (100, 5, 64, 2), (30, 3, 256, 1)]
)
def test_cost_is_bounded_by_passes(n, n_batches, batch_size, passes):
    net = healthy_mlp(depth=3)
    calls, seen = [], []
    def count(module, args):
        calls.append(1)
        seen.append(len(args[0]))

    handle = net.register_forward_pre_hook(count)
    backward = []
    out_handle = net.output.register_full_backward_hook(lambda m, gi, go: backward.append(1))
    try:
        rep = report(net, batch(n), n_batches=n_batches, batch_size=batch_size)
    finally:
        handle.remove()
        out_handle.remove()
    assert len(calls) == passes == rep.n_passes
    assert len(backward) == passes
    assert sum(seen) == min(n, n_batches * batch_size) == rep.n_examples
    assert max(seen) <= batch_size


# -- rendering ---------------------------------------------------------------------------------------------
def test_html_text_and_plot():
    model, data, _ = failing("dead")
    rep = report(model, data)
    html = rep._repr_html_()
    assert "<table" in html and "dead" in html and "hidden2.act" in html
    assert "dead-ReLU chapter" in str(rep)
    assert repr(rep).startswith("<HealthReport ok=False problems=[") and "'dead'" in repr(rep)
    frame = rep.findings_frame()
    assert list(frame.columns) == ["layer", "problem", "value", "threshold", "message", "chapter", "basis"]
    assert len(frame) == len(rep.findings)
    fig = rep.plot()
    assert len(fig.axes) == 4 and all(ax.get_ylabel() for ax in fig.axes)
    import matplotlib.pyplot as plt

    plt.close(fig)
    ok = report(healthy_mlp(), batch())
    assert "No problem found" in ok._repr_html_()
    plt.close(ok.plot())


def test_available_from_the_package():
    assert helpers.report is report
    assert not hasattr(helpers.monitor, "report")  # no import cycle: the monitor knows nothing of the report


# -- bad arguments --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"lr": 0}, ValueError, ["lr", "0"]),
        ({"lr": "fast"}, TypeError, ["lr", "fast"]),
        ({"optimizer": "rmsprop"}, ValueError, ["optimizer", "rmsprop", "sgd", "adam"]),
        ({"mode": "test"}, ValueError, ["mode", "test", "train", "eval"]),
        ({"n_batches": 0}, ValueError, ["n_batches", "0"]),
        ({"batch_size": 2.5}, TypeError, ["batch_size", "2.5"]),
        ({"seed": -1}, ValueError, ["seed", "-1"]),
        ({"dead_fraction": 1.5}, ValueError, ["dead_fraction", "1.5"]),
        ({"saturated_fraction": -0.1}, ValueError, ["saturated_fraction", "-0.1"]),
        ({"min_example_std": -1}, ValueError, ["min_example_std"]),
        ({"vanishing_ratio": 0}, ValueError, ["vanishing_ratio"]),
        ({"vanishing_ratio": 10, "exploding_ratio": 5}, ValueError, ["vanishing_ratio", "exploding_ratio"]),
        ({"update_ratio_range": (0.1, 0.01)}, ValueError, ["update_ratio_range", "low < high"]),
        ({"update_ratio_range": 0.1}, TypeError, ["update_ratio_range"]),
        ({"loss_fn": "mse"}, TypeError, ["loss_fn", "mse"]),
    ],
)
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        report(healthy_mlp(depth=2), batch(), **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_bad_data():
    net = healthy_mlp(depth=2)
    x, y = batch()
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):  # a dict goes to the model as kwargs
        report(net, {"x": x})
    with pytest.raises(TypeError, match="must be an"):
        report(net, [1, 2, 3])
    with pytest.raises(TypeError, match=r"must be an \(x, y\) pair.*got 3 items"):
        report(net, (x, y, y))
    with pytest.raises(ValueError, match="data has 256 examples but the targets have 10"):
        report(net, (x, y[:10]))
    with pytest.raises(ValueError, match="target must be None"):
        report(net, (x, y), target=y)
    with pytest.raises(ValueError, match="no examples"):
        report(net, x[:0])
    with pytest.raises(ValueError, match="loss_fn was given but there are no targets"):
        report(net, x, loss_fn=nn.functional.cross_entropy)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        report("net", (x, y))
    with pytest.raises(ValueError, match="problem='typo'"):
        report(net, (x, y)).flagged("typo")


def test_fixup_net_is_not_a_broken_init():
    """Fixup zero-initialises half the matrices (each branch's last layer and the head) and adds
    zero scalar biases: a standard init, whose zero gradients at the first step are by design."""
    from helpers.residual import residual_mlp

    torch.manual_seed(0)
    found = report(residual_mlp(64, 10, depth=8, width=16, branch="fixup"), load_digits(), optimizer="sgd", lr=0.05)
    assert found.ok, found.problems
    assert any("sit behind zero-initialised" in note for note in found.notes)
