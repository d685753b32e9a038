"""Tests of helpers.se_case (the diagnosis chapter's squeeze-and-excitation case)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import se_case
from helpers.data import Dataset
from helpers.health import report
from helpers.se_case import KERAS, MODES, PYTORCH, RECAL, TRAIN
from helpers.senet import SENet
from helpers.text import sci


def tiny_images(n_train: int = 128, n_test: int = 40, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_test, 1, 8, 8, generator=g) * 2 + 0.5
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return Dataset("tiny", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 10)


def fake_log(acc: dict[str, list[float]], std: dict[str, list[float]]) -> pd.DataFrame:
    """A ModeProbe-like frame: epochs 1.., one row per (epoch, mode)."""
    rows = [{"epoch": e + 1, "mode": mode, "accuracy": acc[mode][e], "std": std[mode][e]}
            for e in range(len(acc[TRAIN])) for mode in acc]
    return pd.DataFrame(rows)


def fake_runs() -> se_case.SeedRuns:
    """Two seeds, six epochs; seed 1's Keras mode falls far at epoch 5, seed 0's at epoch 3 only."""
    const = [0.9] * 6
    logs = {}
    for seed, keras in ((0, [0.1, 0.2, 0.1, 0.8, 0.85, 0.88]), (1, [0.1, 0.3, 0.6, 0.7, 0.2, 0.9])):
        acc = {TRAIN: [0.5, 0.8, 0.88, 0.9, 0.9, 0.91], PYTORCH: [0.4, 0.7, 0.8, 0.85, 0.7, 0.9],
               KERAS: keras, RECAL: const}
        grow = [1.0, 1.2, 1.3, 1.4, 1.5, 1.5 + seed / 10]
        std = {TRAIN: grow, PYTORCH: grow, KERAS: [g * s for g, s in zip(grow, np.linspace(0.1, 0.6, 6))],
               RECAL: grow}
        logs[seed] = (None, fake_log(acc, std))
    return se_case.SeedRuns(logs, seconds=1.0)


def test_seed_runs_measure_the_fall_below_recalibrated():
    runs = fake_runs()
    assert runs.log.seed.tolist().count(1) == 24
    # from epoch 4 on, the largest drop below RECAL (0.9): seed 0 Keras 0.9 - 0.8, seed 1 0.9 - 0.2
    assert runs.gap.loc[0, KERAS] == pytest.approx(0.1)
    assert runs.gap.loc[1, KERAS] == pytest.approx(0.7)
    assert runs.gap.loc[1, PYTORCH] == pytest.approx(0.2)
    assert runs.gap.loc[0, TRAIN] == pytest.approx(0.0)
    assert list(runs.gap.columns) == MODES
    assert runs.shown_seed == 1  # len 2: the index at position 1 of the sorted falls
    assert runs.worst.loc[1, KERAS] == pytest.approx(0.2)
    assert runs.final.loc[0].tolist() == pytest.approx([0.91, 0.9, 0.88, 0.9])


def test_seed_runs_std_trend_and_summaries():
    runs = fake_runs()
    assert runs.growth.tolist() == pytest.approx([1.5, 1.6])
    assert runs.keras_share.iloc[0].tolist() == pytest.approx([0.1, 0.1])
    assert runs.keras_share.iloc[-1].tolist() == pytest.approx([0.6, 0.6])
    assert runs.train_mode["final accuracy"].tolist() == pytest.approx([0.91, 0.91])
    assert runs.train_mode["std: last / max"].tolist() == pytest.approx([1.0, 1.0])
    assert runs.summaries.loc[(1, KERAS), "lowest, epochs 6+"] == pytest.approx(0.9)
    text = se_case.std_sentence(runs)
    assert "(it grew by 50%–60% since the first epoch)" in text
    assert "is 10% of training mode's after the first epoch and 60% after the last." in text
    assert "cost 10–70 points of test accuracy at some epoch, PyTorch's 20–20," in se_case.gap_sentence(runs)
    text = se_case.recalibration_sentence(runs)
    assert "by at least **0.10** on every seed" in text and "is 0.90–0.90." in text
    assert "the worst test accuracy of epochs 4–6 above" in text  # LATE to the log's last epoch


def test_variants_lowest_and_largest_fall():
    acc = {TRAIN: [0.2, 0.6, 0.5, 0.7, 0.4, 0.65, 0.8]}
    no_bn = fake_log(acc, {TRAIN: [1.0] * 7})
    deep = fake_log({m: [0.5] * 7 for m in MODES}, {m: [1.0] * 7 for m in MODES})
    deep.loc[(deep["mode"] == KERAS) & (deep.epoch == 6), "accuracy"] = 0.1
    variants = se_case.Variants({"6 blocks": deep, "no BatchNorm": no_bn})
    assert variants.largest_fall("no BatchNorm") == pytest.approx(0.3)  # 0.7 then 0.4
    assert variants.lowest("6 blocks")[KERAS] == pytest.approx(0.1)
    assert list(variants.trained_as.index) == ["6 blocks", "no BatchNorm"]
    with pytest.raises(ValueError, match="net"):
        variants.lowest("7 blocks")
    text = se_case.variants_sentence(variants, pd.Series([0.95, 0.97]))
    assert "(lowest accuracy from epoch 6 on: 0.100, against 0.500 recalibrated)" in text
    assert "(0.800 after 7 epochs, against 0.950–0.970 for the BatchNorm nets of the two seeds)" in text
    assert "(at most 30 points below its best epoch so far)" in text


def _fake_stacks(after: list[float], n_blocks: int = 6) -> se_case.PlainStacks:
    def rep(value):
        return SimpleNamespace(findings=[SimpleNamespace(problem="vanishing", value=value)])

    reports = {"sigmoid gate": rep(2e-8), "2·sigmoid gate": rep(1.6e-6), "no SE": rep(3e-6)}
    stacks = se_case.PlainStacks(reports, pd.DataFrame(), epochs=5, n_seeds=2, n_blocks=n_blocks)
    nets = [label for label in reports for _ in range(2)]
    stacks.table = pd.DataFrame({"net": nets, "seed": [0, 1] * 3, stacks.after: after,
                                 stacks.best: [a + 0.01 for a in after]})
    return stacks


def test_plain_stacks_ratios_and_sentence():
    stacks = _fake_stacks([0.1, 0.11, 0.3, 0.5, 0.15, 0.4])
    assert stacks.after == "accuracy after 5 epochs"
    assert stacks.shrink == pytest.approx(80)
    assert stacks.ratios["no SE"] == 3e-6
    assert stacks.gated[stacks.best].max() == pytest.approx(0.12)
    assert stacks.others.seed.tolist() == [0, 1, 0, 1]
    text = se_case.plain_sentence(stacks)
    assert f"{sci(1.6e-6)} of the last one's with the 2·sigmoid gate" in text
    assert "80 times smaller again, close to the 2⁶ = 64 that six gates at 0.5 predict." in text
    assert text.startswith("In the plain six-block stack the report flags vanishing gradients for all three nets")
    assert "In 5 epochs of training" in text and "on any of the 2 seeds" in text
    assert "median test accuracy over the 4 runs is 0.35, the best 0.50" in text
    assert "1 of these 4 runs is still below 20 % (no SE seed 0): all three stacks start" in text
    assert "every one of these 4 runs is above 20 %" in se_case.plain_sentence(
        _fake_stacks([0.1, 0.1, 0.3, 0.5, 0.25, 0.4]))
    text = se_case.plain_sentence(_fake_stacks([0.1, 0.11, 0.3, 0.5, 0.15, 0.4], n_blocks=4))
    assert text.startswith("In the plain four-block stack")
    assert "80 times smaller again, where four gates at 0.5 would predict 2⁴ = 16." in text
    stacks = _fake_stacks([0.1, 0.11, 0.3, 0.5, 0.15, 0.4], n_blocks=7)
    stacks.reports["no SE"].findings = []  # not flagged: its ratio is NaN
    text = se_case.plain_sentence(stacks)
    assert "flags vanishing gradients for two of the three nets" in text
    assert "close to the 2⁷ = 128 that seven gates at 0.5 predict." in text


def test_train_senet_probes_four_modes_and_plain_stacks_tabulate():
    images = tiny_images()
    net, log = se_case.train_senet(images, seed=1, epochs=2, channels=8, n_blocks=2)
    assert isinstance(net, SENet) and len(net.blocks) == 2
    assert log.epoch.tolist() == [1] * 4 + [2] * 4 and log["mode"].tolist()[:4] == MODES
    with pytest.raises(ValueError, match="epochs"):
        se_case.train_senet(images, epochs=0)
    gates = {"sigmoid gate": "sigmoid", "2·sigmoid gate": "2sigmoid"}
    stacks = se_case.plain_stacks(images, gates, seeds=[0], epochs=1, n_blocks=2)
    assert stacks.table.net.tolist() == list(gates) and stacks.n_seeds == 1 and stacks.n_blocks == 2
    torch.manual_seed(0)
    direct = report(SENet(n_blocks=2, bn=False, residual=False, gate="sigmoid"), images, lr=1e-3,
                    optimizer="adam")
    value = [f.value for f in direct.findings if f.problem == "vanishing"]
    expected = value[0] if value else math.nan
    assert stacks.ratios["sigmoid gate"] == pytest.approx(expected, nan_ok=True)
    assert stacks.table["first/last gradient at init"][0] == pytest.approx(expected, nan_ok=True)


def test_seeds_variants_and_train_eval_std_run():
    images = tiny_images(n_train=64)
    runs = se_case.train_seeds(images, seeds=[0, 1], epochs=1)
    assert sorted(runs.runs) == [0, 1] and runs.seconds > 0
    variants = se_case.train_variants(images, {"no BatchNorm": dict(bn=False, channels=4)})
    assert variants.logs["no BatchNorm"]["mode"].unique().tolist() == [TRAIN]
    torch.manual_seed(0)
    net = SENet(channels=4, n_blocks=1)
    spread = se_case.train_eval_std(net, images)
    direct = report(net, images, mode="eval").layers.set_index("layer").act_std
    assert list(spread.columns) == ["train mode", "eval mode"]
    assert spread["eval mode"]["blocks.0.act1"] == direct["blocks.0.act1"]
