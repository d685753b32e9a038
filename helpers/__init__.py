"""Trainability's helper package: data, models, init, monitor, report, train, plots, widgets.

>>> import helpers
>>> helpers.__version__
'0.1.0'
"""

from . import claims, data, init, models, monitor, plots, report, seed, train, widgets
from .seed import seed_everything

__version__ = "0.1.0"
__all__ = [
    "claims", "data", "init", "models", "monitor", "plots", "report", "seed", "train", "widgets",
    "seed_everything", "__version__",
]

plots.set_theme()
