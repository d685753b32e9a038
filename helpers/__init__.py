"""Trainability's helper package: data, models, init, monitor, health report, train, plots, widgets.

Importing it changes no global state; a notebook calls :func:`setup` once.

>>> import helpers
>>> helpers.__version__
'0.1.0'
"""

from . import (
    claims,
    data,
    health,
    hooks,
    init,
    inputs,
    layers,
    models,
    monitor,
    plots,
    rules,
    seed,
    stats,
    train,
    widgets,
)
from .health import HealthReport, report
from .seed import seed_everything
from .session import setup

__version__ = "0.1.0"
__all__ = [
    "claims", "data", "health", "hooks", "init", "inputs", "layers", "models", "monitor", "plots", "rules",
    "seed", "stats", "train", "widgets", "HealthReport", "report", "seed_everything", "setup", "__version__",
]
