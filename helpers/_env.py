"""Where the code runs: the book build or an ordinary kernel.

``make book`` sets ``TRAINABILITY_BUILD=1``. Under it, progress bars are off and
explorers (:mod:`helpers.widgets`) render their static, precomputed form.
"""

from __future__ import annotations

import os

BUILD_ENV = "TRAINABILITY_BUILD"


def building_book() -> bool:
    """True when the notebook is being executed for the static site (``TRAINABILITY_BUILD=1``)."""
    return os.environ.get(BUILD_ENV, "").strip().lower() in ("1", "true", "yes")

