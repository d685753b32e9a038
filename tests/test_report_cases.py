"""Tests of helpers.report_cases (the diagnosis chapter's nets run through the report)."""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from helpers import data, models, report_cases, text  # noqa: E402
from helpers.health import report  # noqa: E402
from helpers.report_cases import Case, mlp_net  # noqa: E402
from helpers.text import sci  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return data.load_digits("standardized", seed=0)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_mlp_net_is_seeded_and_keeps_the_default_init_without_scheme():
    torch.manual_seed(3)
    direct = models.mlp(64, 10, depth=3, activation="tanh")
    built = mlp_net(3, "tanh", seed=3)
    for a, b in zip(direct.state_dict().values(), built.state_dict().values()):
        torch.testing.assert_close(a, b)
    scaled = mlp_net(3, "relu", "kaiming_normal", scale=2.0)
    plain = mlp_net(3, "relu", "kaiming_normal")
    ratio = float(scaled.hidden2.linear.weight.std() / plain.hidden2.linear.weight.std())
    assert ratio == pytest.approx(2.0, rel=0.05)  # scale multiplies the weights (same draw)
    with pytest.raises(ValueError, match="depth"):
        mlp_net(0, "relu")


def test_dead_relu_net_dies_on_raw_pixels_only():
    def active_units(net, dataset):
        with torch.no_grad():
            hidden = net.hidden1(dataset.x_train)
        return int((hidden > 0).any(0).sum())

    raw, unit = data.load_digits("bytes", seed=0), data.load_digits("unit", seed=0)
    assert active_units(report_cases.dead_relu_net(raw), raw) == 0
    assert active_units(report_cases.dead_relu_net(unit), unit) > 200
    torch.manual_seed(0)
    untrained = models.mlp(64, 10, depth=1, width=256)
    assert not torch.equal(report_cases.dead_relu_net(unit, steps=1).hidden1.linear.weight,
                           untrained.hidden1.linear.weight)
    with pytest.raises(ValueError, match="steps"):
        report_cases.dead_relu_net(unit, steps=0)


def test_six_cases_are_lazy_and_the_dead_relu_case_runs_on_its_own_data(digits):
    raw, unit = data.load_digits("bytes", seed=0), data.load_digits("unit", seed=0)
    cases = report_cases.six_cases(digits, raw, unit)
    assert list(cases) == ["vanishing", "exploding", "saturating init", "collapsing init", "dead ReLU",
                           "no normalization"]
    assert cases["dead ReLU"].data == (raw, unit)
    assert all(c.data == (digits, digits) for name, c in cases.items() if name != "dead ReLU")
    assert cases["no normalization"].expected == {"vanishing", "collapsed"}
    assert len(list(cases["vanishing"].failing().parameters())) == 22  # 11 linear layers


def _tiny_cases(digits):
    return {"sigmoid": Case("8 sigmoid layers", partial(mlp_net, 8, "sigmoid"), "ReLU + Kaiming",
                            partial(mlp_net, 8, "relu", "kaiming_normal"), 0.1, {"vanishing"},
                            (digits, digits)),
            "huge lr": Case("Kaiming, lr 1e6", partial(mlp_net, 2, "relu", "kaiming_normal"), "lr 1e6 too",
                            partial(mlp_net, 2, "relu", "kaiming_normal"), 1e6, {"nothing"}, (digits, digits))}


def test_run_cases_reports_trains_and_tabulates(digits):
    runs = report_cases.run_cases(_tiny_cases(digits), steps=3)
    assert runs.steps == 3
    assert runs.table[["case", "version"]].values.tolist() == [
        ["sigmoid", "failing"], ["sigmoid", "fixed"], ["huge lr", "failing"], ["huge lr", "fixed"]]
    direct = report(mlp_net(8, "sigmoid"), digits, lr=0.1)
    assert runs.table.findings[0] == ", ".join(sorted(direct.problems))
    assert list(runs.accuracy.index) == ["sigmoid", "huge lr"]
    assert list(runs.accuracy.columns) == ["failing", "fixed"]
    assert runs.status.loc["huge lr", "failing"] == "diverged"
    assert runs.status.loc["sigmoid", "fixed"] == "ok"
    assert runs.flagged() == ["sigmoid"]  # "nothing" is never a finding
    assert runs.clean() == [name for name in ("sigmoid", "huge lr") if runs.reports[name, "fixed"].ok]
    fig = runs.figure("sigmoid", "fixed")
    assert "sigmoid, fixed: ReLU + Kaiming" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="version"):
        runs.figure("sigmoid", "broken")
    with pytest.raises(ValueError, match="steps"):
        report_cases.run_cases(_tiny_cases(digits), steps=0)


def test_reading_a_report(digits):
    rep = report(mlp_net(10, "sigmoid"), digits, lr=0.1)
    vanishing = [f.value for f in rep.findings if f.problem == "vanishing"]
    assert report_cases.finding_value(rep, "vanishing") == vanishing[0]
    assert math.isnan(report_cases.finding_value(rep, "dead"))
    act_rows, weight_rows, act_table, weight_table = report_cases.report_tables(rep)
    assert len(act_rows) == 10 and len(weight_rows) == 11
    assert list(act_table.data.columns) == ["std", "std across examples", "dead share"]
    assert weight_table.data["update ratio"].tolist() == weight_rows.update_ratio.tolist()
    thresholds = report_cases.threshold_table(rep)["default"]
    low, high = rep.thresholds["update_ratio_range"]
    assert thresholds["update_ratio_range"] == f"{low:g} to {high:g}"
    assert thresholds["dead_fraction"] == f"{rep.thresholds['dead_fraction']:g}"
    sentence = report_cases.vanishing_sentence(rep)
    assert sci(vanishing[0]) in sentence and sci(weight_rows.update_ratio.min()) in sentence
    count = text.count_word(len(rep.problems)).capitalize()
    assert sentence.startswith(f"{count} findings for one cause: ")


def test_vanishing_sentence_counts_the_findings():
    layers = pd.DataFrame({"kind": ["weight", "weight"], "update_ratio": [2e-9, 1e-3]})
    vanishing = SimpleNamespace(problem="vanishing", value=3e-7)
    rep = SimpleNamespace(problems={"vanishing", "update_small"}, findings=[vanishing], layers=layers)
    assert report_cases.vanishing_sentence(rep) == (
        f"Two findings for one cause: the gradient vanishes backward (the first layer's RMS is "
        f"{sci(3e-7)} of the last one's), and so the first layers' update ratios are far below "
        f"10⁻³, down to {sci(2e-9)}.")
    rep.problems = {"collapsed", "vanishing", "update_small"}
    assert report_cases.vanishing_sentence(rep).startswith(
        "Three findings for one cause: the signal collapses forward (")
    rep.problems = {"vanishing", "dead"}
    with pytest.raises(ValueError, match="dead"):
        report_cases.vanishing_sentence(rep)
    rep.problems = set()
    with pytest.raises(ValueError, match="none"):
        report_cases.vanishing_sentence(rep)
    assert [text.count_word(n) for n in (0, 3, 10, 11)] == ["zero", "three", "ten", "11"]


def test_healthy_sentence_reads_the_report(digits):
    rep = report(mlp_net(6, "relu", "kaiming_normal"), digits, lr=0.1)
    layers = rep.layers.set_index("layer")
    acts = layers[layers.kind == "activation"]
    grad = layers[layers.kind == "weight"].grad_rms
    text = report_cases.healthy_sentence(rep)
    assert f"from {acts.example_std.iloc[0]:.2f} after the first layer" in text
    assert f"({acts.frac_dead.idxmax()})" in text
    assert f"a factor of {grad.max() / grad.min():.1f}," in text


def test_exploding_sentence_reads_the_finding(digits):
    rep = report(mlp_net(10, "relu", "kaiming_normal", scale=2.0), digits, lr=0.1)
    found = [f for f in rep.findings if f.problem == "exploding"][0]
    text = report_cases.exploding_sentence(rep)
    assert f"({found.layer}) it is {found.value:.0f} times" in text
    assert f"{rep.loss:.3g} against ln 10 = 2.30" in text


def test_accuracy_sentence():
    acc = pd.DataFrame({"failing": [0.1, np.nan, 0.38, 0.09, 0.1, 0.1],
                        "fixed": [0.96, 0.96, 0.92, 0.93, 0.92, 0.95]},
                       index=["vanishing", "exploding", "saturating init", "collapsing init", "dead ReLU",
                              "no normalization"])
    text = report_cases.accuracy_sentence(acc, steps=300)
    assert text.startswith("4 of the failing nets are still at chance")
    assert "about 0.1) after 300 steps, at" in text
    assert "after 40 steps, at" in report_cases.accuracy_sentence(acc, steps=40)
    assert "at 0.09–0.10;" in text and "0.38 against its fix's 0.92, 54 points behind" in text
    assert text.endswith("The fixed nets reach 0.92–0.96.")
    with pytest.raises(ValueError, match="lagging"):
        report_cases.accuracy_sentence(acc, 300, lagging="missing")
    with pytest.raises(ValueError, match="steps"):
        report_cases.accuracy_sentence(acc, 0)


def test_dead_share_and_saturation_by_input_scale(digits):
    net = mlp_net(3, "sigmoid")
    direct = report(net, digits, n_batches=1, batch_size=32).layers.set_index("layer").frac_dead
    assert report_cases.dead_share(net, digits, 1, 32, layer="hidden2.act") == direct["hidden2.act"]
    with pytest.raises(ValueError, match="batch_size"):
        report_cases.dead_share(net, digits, 1, 0)
    table = report_cases.saturation_by_input_scale(net, digits, factors=(1, 100))
    assert table["inputs ×"].tolist() == [1, 100]
    big = report(net, (digits.x_train * 100, digits.y_train)).layers.set_index("layer").frac_saturated
    assert table["saturated, first layer"][1] == big["hidden1.act"]
    assert table["saturated, layers 2–10 (most)"][1] == max(big["hidden2.act"], big["hidden3.act"])
    assert table.flagged.tolist() == ["no", "yes"]
