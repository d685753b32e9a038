"""Shared fixtures of the unit tests of ``helpers``."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

# Property-based tests draw the same examples on every run, so CI cannot turn red by chance;
# HYPOTHESIS_PROFILE=explore searches afresh.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The tests run tiny nets: one intra-op thread is fastest, and on a shared machine two OpenMP threads
# waiting on each other make each small op take milliseconds.
torch.set_num_threads(1)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an unsigned-byte array in LeCun's IDX format (written independently of helpers.data)."""
    array = np.asarray(array, dtype=np.uint8)
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.tobytes()


@pytest.fixture(scope="session")
def write_idx():
    """``write_idx(path, array)`` writes ``array`` as an IDX file, gzip-compressed when ``path`` ends in .gz."""

    def write(path: Path, array: np.ndarray) -> Path:
        raw = idx_bytes(array)
        Path(path).write_bytes(gzip.compress(raw) if str(path).endswith(".gz") else raw)
        return Path(path)

    return write


@pytest.fixture
def blobs_xy():
    """A small, easy 3-class problem as an ``(x, y)`` pair."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    y = torch.arange(120) % 3
    x = centres[y] + 0.5 * torch.randn(120, 2, generator=g)
    return x, y


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test opened."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
