"""Bad inputs across the public API: each raises ValueError or TypeError naming the argument and the value.

Every case asserts the exception type and, with ``match``, that the message names the argument and
the bad value (and, for choices, lists the valid ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import data, init, models, monitor, plots, train
from helpers._checks import check_choice, check_int, check_number
from helpers.seed import seed_everything

NET = models.mlp(4, 2, depth=2, width=4)
X, Y = torch.randn(8, 4), torch.randint(0, 2, (8,))
STATS = pd.DataFrame({"index": [1], "quantity": ["act_std"], "value": [1.0]})
HISTORY = pd.DataFrame({"step": [1], "split": ["train"], "metric": ["loss"], "value": [1.0]})
HISTS = pd.DataFrame({"step": [1], "layer": ["a"], "index": [1], "bin_left": [0.0], "bin_right": [1.0],
                      "density": [1.0]})

CASES = [
    # helpers.data
    ("digits scale", lambda: data.load_digits("pixels"), ValueError,
     r"pixels='pixels' is not valid; choose one of: 'raw', 'bytes', 'unit', 'standardized'"),
    ("digits test_fraction too big", lambda: data.load_digits(test_fraction=1.5), ValueError,
     r"test_fraction=1\.5 is not valid; it must be <= 0\.9"),
    ("digits test_fraction zero", lambda: data.load_digits(test_fraction=0), ValueError,
     r"test_fraction=0\.0 is not valid; it must be > 0\.0"),
    ("digits test_fraction type", lambda: data.load_digits(test_fraction="a"), TypeError,
     r"test_fraction must be a number, got 'a' of type str"),
    ("mnist1d n_samples", lambda: data.load_mnist1d(5), ValueError,
     r"n_samples=5 is not valid; it must be an int >= 20"),
    ("blobs spread", lambda: data.make_blobs(spread=0), ValueError, r"spread=0\.0 is not valid; it must be > 0"),
    ("blobs n_features type", lambda: data.make_blobs(n_features=2.5), TypeError,
     r"n_features must be an int, got 2\.5 of type float"),
    ("fashion scale", lambda: data.load_fashion_mnist(pixels="grey"), ValueError, r"pixels='grey' is not valid"),
    # helpers.models
    ("activation name", lambda: models.activation("swish"), ValueError,
     r"activation='swish' is not valid; choose one of: 'sigmoid', 'tanh', 'relu'"),
    ("activation slope", lambda: models.activation("leaky_relu", negative_slope=-1), ValueError,
     r"negative_slope=-1\.0 is not valid; it must be >= 0"),
    ("mlp depth", lambda: models.mlp(64, 10, depth=0), ValueError, r"depth=0 is not valid; it must be an int >= 1"),
    ("mlp in_features", lambda: models.mlp(0, 10), ValueError, r"in_features=0 is not valid"),
    ("mlp width count", lambda: models.mlp(64, 10, depth=3, width=[32, 16]), ValueError,
     r"width=\[32, 16\] has 2 entries but depth=3"),
    ("mlp width type", lambda: models.mlp(64, 10, width="64"), TypeError,
     r"width must be an int or a sequence of ints, got '64'"),
    ("mlp width entry", lambda: models.mlp(64, 10, depth=2, width=[32, True]), TypeError,
     r"width must be an int, got True"),
    ("mlp norm", lambda: models.mlp(64, 10, norm="group"), ValueError,
     r"norm='group' is not valid; choose one of: None, 'batch', 'layer'"),
    ("mlp norm_position", lambda: models.mlp(64, 10, norm_position="middle"), ValueError,
     r"norm_position='middle' is not valid; choose one of: 'before', 'after'"),
    ("mlp activation", lambda: models.mlp(64, 10, activation="Relu"), ValueError, r"activation='Relu' is not valid"),
    ("cnn norm", lambda: models.small_cnn(norm="batchnorm"), ValueError,
     r"norm='batchnorm' is not valid; choose one of: None, 'batch', 'layer', 'instance', 'group'"),
    ("cnn groups", lambda: models.small_cnn(norm="group", channels=(6, 8), groups=4), ValueError,
     r"groups=4 must divide the channel count 6"),
    ("cnn channels", lambda: models.small_cnn(channels=(16, 0)), ValueError, r"channels=0 is not valid"),
    # helpers.init
    ("gain activation", lambda: init.gain("gelu"), ValueError,
     r"activation='gelu' is not valid; choose one of: 'identity', 'sigmoid', 'tanh'"),
    ("weight_variance scheme", lambda: init.weight_variance("he", 10, 10), ValueError,
     r"scheme='he' is not valid; choose one of: 'normal', 'uniform'"),
    ("weight_variance fan_in", lambda: init.weight_variance("kaiming_normal", 0, 10), ValueError,
     r"fan_in=0 is not valid"),
    ("init scheme", lambda: init.init_(NET, "kaiming"), ValueError, r"scheme='kaiming' is not valid"),
    ("init mode", lambda: init.init_(NET, "kaiming_normal", mode="fan_avg"), ValueError,
     r"mode='fan_avg' is not valid; choose one of: 'fan_in', 'fan_out'"),
    ("init std", lambda: init.init_(NET, "normal", std=-1), ValueError, r"std=-1\.0 is not valid; it must be >= 0"),
    ("init scale type", lambda: init.init_(NET, "zeros", scale="2"), TypeError, r"scale must be a number, got '2'"),
    ("init model", lambda: init.init_("net", "zeros"), TypeError, r"model must be a torch\.nn\.Module, got str"),
    ("init lsuv data", lambda: init.init_(NET, "lsuv"), ValueError, r"scheme='lsuv' needs data="),
    ("init seed", lambda: init.init_(NET, "zeros", seed=-1), ValueError, r"seed=-1 is not valid"),
    ("predicted widths short", lambda: init.predicted_variance("xavier_normal", [100]), ValueError,
     r"widths=\[100\] needs at least two sizes"),
    ("predicted widths type", lambda: init.predicted_variance("xavier_normal", 100), TypeError,
     r"widths must be a sequence of layer sizes .*got 100"),
    ("predicted input_variance", lambda: init.predicted_variance("xavier_normal", [4, 4], input_variance=-1),
     ValueError, r"input_variance=-1\.0 is not valid"),
    ("lsuv data type", lambda: init.lsuv_(NET, np.zeros((8, 4))), TypeError,
     r"data must be a torch\.Tensor batch, got ndarray"),
    ("lsuv tol", lambda: init.lsuv_(NET, X, tol=0), ValueError, r"tol=0\.0 is not valid; it must be > 0"),
    # helpers.monitor
    ("monitor every", lambda: monitor.Monitor(NET, every=0), ValueError,
     r"every=0 is not valid; it must be an int >= 1"),
    ("monitor max_samples", lambda: monitor.Monitor(NET, max_samples=1), ValueError, r"max_samples=1 is not valid"),
    ("monitor bins", lambda: monitor.Monitor(NET, bins=2.0), TypeError, r"bins must be an int, got 2\.0"),
    ("monitor hist_range", lambda: monitor.Monitor(NET, hist_range=(1.0, 0.0)), ValueError,
     r"hist_range=\(1\.0, 0\.0\) is not valid; give \(low, high\) with low < high"),
    ("monitor model", lambda: monitor.Monitor("net"), TypeError, r"model must be a torch\.nn\.Module, got str"),
    ("snapshot x", lambda: monitor.snapshot(NET, [[0.0] * 4]), TypeError, r"x must be a torch\.Tensor batch, got list"),
    # helpers.train
    ("fit steps", lambda: train.fit(NET, (X, Y), steps=0), ValueError, r"steps=0 is not valid; it must be an int >= 1"),
    ("fit lr", lambda: train.fit(NET, (X, Y), lr=0), ValueError, r"lr=0\.0 is not valid; it must be > 0"),
    ("fit lr type", lambda: train.fit(NET, (X, Y), lr="0.1"), TypeError, r"lr must be a number, got '0\.1'"),
    ("fit batch_size", lambda: train.fit(NET, (X, Y), batch_size=0), ValueError, r"batch_size=0 is not valid"),
    ("fit optimizer", lambda: train.fit(NET, (X, Y), optimizer="rmsprop"), ValueError,
     r"optimizer='rmsprop' is not valid; choose one of: 'sgd', 'adam'"),
    ("fit momentum", lambda: train.fit(NET, (X, Y), momentum=1.5), ValueError,
     r"momentum=1\.5 is not valid; it must be <= 1"),
    ("fit clip_norm", lambda: train.fit(NET, (X, Y), clip_norm=-1), ValueError, r"clip_norm=-1\.0 is not valid"),
    ("fit clip_value", lambda: train.fit(NET, (X, Y), clip_value=0), ValueError, r"clip_value=0\.0 is not valid"),
    ("fit loss", lambda: train.fit(NET, (X, Y), loss="hinge"), ValueError,
     r"loss='hinge' is not valid; choose one of: 'cross_entropy', 'mse'"),
    ("fit eval_every", lambda: train.fit(NET, (X, Y), eval_every=0), ValueError, r"eval_every=0 is not valid"),
    ("fit data type", lambda: train.fit(NET, X.numpy()), TypeError,
     r"data must be a helpers\.data\.Dataset or an \(x, y\) pair of tensors, got ndarray"),
    ("fit data sizes", lambda: train.fit(NET, (X, Y[:-1])), ValueError, r"x has 8 examples but y has 7"),
    ("fit monitor", lambda: train.fit(NET, (X, Y), monitor="yes"), TypeError,
     r"monitor must be a Monitor, True, a dict of Monitor arguments or None, got 'yes'"),
    ("fit seed", lambda: train.fit(NET, (X, Y), seed=-3), ValueError, r"seed=-3 is not valid"),
    ("fit model", lambda: train.fit(None, (X, Y)), TypeError, r"model must be a torch\.nn\.Module, got NoneType"),
    ("evaluate loss", lambda: train.evaluate(NET, X, Y, loss="hinge"), ValueError, r"loss='hinge' is not valid"),
    ("seed type", lambda: seed_everything("0"), TypeError, r"seed must be an int, got '0' of type str"),
    # helpers.plots
    ("histogram col_wrap", lambda: plots.histogram_grid(HISTS, col_wrap=0), ValueError, r"col_wrap=0 is not valid"),
    ("histogram step", lambda: plots.histogram_grid(HISTS, step=7), ValueError,
     r"step=7 has no histograms; recorded steps: \[1\]"),
    ("layer_lines quantity", lambda: plots.layer_lines(STATS, "grad"), ValueError,
     r"quantity='grad' is not in stats; it has \['act_std'\]"),
    ("training_curves metric", lambda: plots.training_curves(HISTORY, "acc"), ValueError,
     r"no rows for metric='acc' on split='train'"),
    ("training_curves history", lambda: plots.training_curves(HISTORY.to_dict(), "loss"), TypeError,
     r"history must be a pandas DataFrame, got dict"),
    # the shared checks
    ("check_number nan", lambda: check_number("lr", float("nan")), ValueError, r"lr=nan is not valid"),
    ("check_int bool", lambda: check_int("depth", True), TypeError, r"depth must be an int, got True of type bool"),
    ("check_choice", lambda: check_choice("kind", "b", ["a"]), ValueError,
     r"kind='b' is not valid; choose one of: 'a'"),
]


@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_enough_cases():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


def test_valid_inputs_pass_the_checks():
    assert check_choice("kind", None, [None, "a"]) is None
    assert check_int("n", 3, minimum=3) == 3
    assert check_number("x", 2, minimum=0, maximum=2) == 2.0 and isinstance(check_number("x", 2), float)
