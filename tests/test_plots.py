"""helpers.plots: each function takes a tidy DataFrame and returns a labelled Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402

from helpers import plots  # noqa: E402
from helpers.models import mlp  # noqa: E402
from helpers.monitor import snapshot  # noqa: E402
from helpers.train import fit  # noqa: E402


@pytest.fixture(scope="module")
def snap():
    torch.manual_seed(0)
    net = mlp(6, 3, depth=7, width=12, activation="tanh")
    return snapshot(net, torch.randn(40, 6), torch.randint(0, 3, (40,)))


@pytest.fixture(scope="module")
def history():
    torch.manual_seed(0)
    x, y = torch.randn(60, 2), torch.randint(0, 2, (60,))
    a = fit(mlp(2, 2, depth=1, width=8), (x, y), steps=12, eval_every=4, progress=False).history
    b = fit(mlp(2, 2, depth=1, width=8), (x, y), steps=12, eval_every=4, lr=0.01, progress=False).history
    return pd.concat([a.assign(run="fast"), b.assign(run="slow")], ignore_index=True)


def test_set_theme():
    plt.rcParams["figure.dpi"] = 50
    plots.set_theme()
    assert plt.rcParams["figure.dpi"] == 100 and plt.rcParams["axes.titlesize"] == 11
    assert list(sns.color_palette()) == list(sns.color_palette(plots.PALETTE))


def test_histogram_grid(snap):
    _, hists = snap
    fig = plots.histogram_grid(hists, col_wrap=3, title="at init", log=True)
    assert isinstance(fig, plt.Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 7 and len(fig.axes) == 9  # 3 x 3 grid, two spare panels hidden
    assert [ax.get_title() for ax in visible] == [f"hidden{i}.act" for i in range(1, 8)]  # ordered by layer index
    assert all(ax.get_yscale() == "log" for ax in visible)
    assert fig._suptitle.get_text() == "at init"
    assert visible[-1].get_xlabel() == "activation" and visible[0].get_ylabel() == "share"
    assert len(visible[0].patches) == 40  # one bar per bin


def test_histogram_grid_step_choice():
    frames = []
    for step in (1, 10):
        frames.append(pd.DataFrame({"step": step, "layer": "a", "index": 1, "bin_left": [0.0, 0.5],
                                    "bin_right": [0.5, 1.0], "count": [1, 3], "density": [0.25, 0.75]}))
    hists = pd.concat(frames, ignore_index=True)
    fig = plots.histogram_grid(hists, step=1)
    assert len(fig.axes) == 1 and [p.get_height() for p in fig.axes[0].patches] == [0.25, 0.75]
    with pytest.raises(ValueError, match=r"step=5 has no histograms; recorded steps: \[1, 10\]"):
        plots.histogram_grid(hists, step=5)


def test_layer_lines(snap):
    stats, _ = snap
    fig = plots.layer_lines(stats, "act_std", logy=True, title="std")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "layer" and ax.get_ylabel() == "act std" and ax.get_yscale() == "log"
    assert ax.get_title() == "std"
    (line,) = ax.get_lines()
    expected = stats[stats.quantity == "act_std"].sort_values("index")
    assert list(line.get_xdata()) == expected["index"].tolist()
    assert list(line.get_ydata()) == pytest.approx(expected.value.tolist())
    both = pd.concat([stats.assign(init="a"), stats.assign(init="b", value=stats.value * 2)])
    fig2, ax2 = plt.subplots()
    assert plots.layer_lines(both, "act_std", hue="init", ax=ax2) is fig2
    assert len(ax2.get_lines()) >= 2 and ax2.get_legend() is not None


def test_training_curves(history):
    fig = plots.training_curves(history, "loss", hue="run", logy=True, title="loss")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "train loss" and ax.get_yscale() == "log"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"fast", "slow"}
    fig2 = plots.training_curves(history[history.run == "fast"], "accuracy", split="train")
    (line,) = fig2.axes[0].get_lines()
    assert list(line.get_xdata()) == [0, 4, 8, 12]
    assert fig2.axes[0].get_ylabel() == "train accuracy"


def test_training_curves_style_and_outside_legend(history):
    fig = plots.training_curves(history, "loss", hue="run", style="run", ylabel="loss on the batch",
                                legend_outside=True)
    ax = fig.axes[0]
    styles = {line.get_linestyle() for line in ax.get_lines()[:2]}  # the two runs' curves
    assert len(styles) == 2, "the two runs must be drawn with different dash patterns"
    assert ax.get_ylabel() == "loss on the batch"
    legend_box = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert legend_box.x0 >= ax.get_window_extent(fig.canvas.get_renderer()).x1  # right of the axes


def test_training_curves_unknown_style_column(history):
    with pytest.raises(ValueError, match=r"style='variant' is not a column of history"):
        plots.training_curves(history, "loss", hue="run", style="variant")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: plots.training_curves(pd.DataFrame({"step": [1]}), "loss"), r"history lacks the columns"),
        (lambda: plots.layer_lines([1, 2], "act_std"), r"stats must be a pandas DataFrame, got list"),
        (lambda: plots.histogram_grid(pd.DataFrame(columns=["step", "layer", "index", "bin_left", "bin_right",
                                                            "density"])), "hists is empty"),
    ],
)
def test_plot_input_errors(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call()
