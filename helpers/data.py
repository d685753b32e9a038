"""Datasets that work offline, as tidy torch tensors.

- :func:`load_digits` — scikit-learn's bundled 8×8 digits (1,797 images), with the
  pixel scale a chapter needs: ``"raw"`` (0–16, as shipped), ``"bytes"`` (0–255, to
  mimic raw image bytes: the dead-ReLU chapter), ``"unit"`` (0–1) or
  ``"standardized"`` (per-pixel z-scores from the training split).
- :func:`load_mnist1d` — MNIST-1D (Greydanus & Kobak 2020), generated locally.
- :func:`make_blobs` — a synthetic set.
- :func:`load_fashion_mnist` — downloaded only when asked, SHA-256 checked, cached
  with an atomic write; readers online can swap it in for digits.

Every loader returns a :class:`Dataset` with a train and a test split.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._checks import check_choice, check_int, check_number

SCALES = ("raw", "bytes", "unit", "standardized")


@dataclass(frozen=True)
class Dataset:
    """A classification data set split into train and test tensors.

    ``x_*`` are float32, ``y_*`` int64 class labels in ``range(n_classes)``.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def n_features(self) -> int:
        """Number of input features of one flattened example."""
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (without the batch axis)."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}, n_classes={self.n_classes})"
        )


def _split(
    name: str, x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, n_classes: int
) -> Dataset:
    check_number("test_fraction", test_fraction, minimum=0.0, maximum=0.9, strict=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = min(max(1, int(round(test_fraction * len(y)))), len(y) - 1)  # both splits non-empty
    test, train = order[:n_test], order[n_test:]
    as_x = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.int64)  # noqa: E731
    return Dataset(name, as_x(x[train]), as_y(y[train]), as_x(x[test]), as_y(y[test]), n_classes)


def _rescale(ds: Dataset, pixels: str, top: float) -> Dataset:
    """Rescale pixel data whose raw maximum is ``top`` to the named ``pixels`` scale."""
    if pixels == "raw":
        return ds
    if pixels == "bytes":
        f = lambda x: x * (255.0 / top)  # noqa: E731
    elif pixels == "unit":
        f = lambda x: x / top  # noqa: E731
    else:  # standardized, with the training split's per-feature statistics
        mean = ds.x_train.mean(0, keepdim=True)
        std = ds.x_train.std(0, keepdim=True).clamp_min(1e-6)
        f = lambda x: (x - mean) / std  # noqa: E731
    return Dataset(ds.name, f(ds.x_train), ds.y_train, f(ds.x_test), ds.y_test, ds.n_classes)


def load_digits(
    pixels: str = "standardized", *, flatten: bool = True, test_fraction: float = 0.25, seed: int = 0
) -> Dataset:
    """scikit-learn's 8×8 handwritten digits (bundled, no download).

    Args:
        pixels: ``"raw"`` (0–16), ``"bytes"`` (0–255), ``"unit"`` (0–1) or
            ``"standardized"`` (per-pixel z-scores from the training split).
        flatten: 64 features per example if True, else images of shape (1, 8, 8).
        test_fraction: share of the 1,797 examples held out.
        seed: seed of the split.

    >>> ds = load_digits("bytes")
    >>> float(ds.x_train.max())
    255.0
    """
    from sklearn.datasets import load_digits as _sk_digits

    check_choice("pixels", pixels, SCALES)
    bunch = _sk_digits()
    x = bunch.data.astype(np.float32)
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    ds = _split("digits", x, bunch.target, test_fraction, seed, 10)
    return _rescale(ds, pixels, 16.0)


def load_mnist1d(n_samples: int = 4000, *, seed: int = 42, test_fraction: float = 0.2) -> Dataset:
    """MNIST-1D (Greydanus & Kobak 2020): 40-point 1-D signals of 10 classes, generated locally.

    The generator is the ``mnist1d`` package's own; nothing is downloaded. Inputs are
    already centred with unit standard deviation.

    >>> ds = load_mnist1d(1000)
    >>> ds.n_features
    40
    """
    from mnist1d.data import get_dataset_args, make_dataset

    check_int("n_samples", n_samples, minimum=20)
    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = n_samples, seed, 1.0 - test_fraction
    state = np.random.get_state()  # noqa: NPY002 -- mnist1d reseeds NumPy's global generator
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    x = np.concatenate([raw["x"], raw["x_test"]]).astype(np.float32)
    y = np.concatenate([raw["y"], raw["y_test"]])
    return _split("mnist1d", x, y, test_fraction, seed, 10)


def make_blobs(
    n_samples: int = 600, n_classes: int = 4, n_features: int = 2, *, spread: float = 1.0,
    seed: int = 0, test_fraction: float = 0.25,
) -> Dataset:
    """Isotropic Gaussian blobs with centres drawn in a box of side 10.

    >>> make_blobs(200, 4, 5).n_features
    5
    """
    check_int("n_samples", n_samples, minimum=2)
    check_int("n_classes", n_classes, minimum=2)
    check_int("n_features", n_features, minimum=1)
    check_number("spread", spread, minimum=0.0, strict=True)
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-5, 5, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, n_samples)
    x = centres[y] + rng.normal(0, spread, size=(n_samples, n_features))
    return _split("blobs", x, y, test_fraction, seed, n_classes)


# --- Fashion-MNIST ---------------------------------------------------------------------------

FASHION_MNIST_URL = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"
#: SHA-256 of the four gzip files Zalando publishes (their MD5s match the official list).
#:
#: :meta hide-value:
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), gzip-compressed or not, into an array.

    The header is two zero bytes, a type code (0x08 = unsigned byte), the number of
    dimensions, then one big-endian int32 per dimension.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"path={str(path)!r} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4)
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(
            f"path={str(path)!r} is truncated: header says {int(np.prod(dims))} values, found {body.size}"
        )
    return body.reshape(tuple(int(d) for d in dims))


def _fetch(url: str, target: Path, sha256: str) -> None:
    """Download ``url`` to ``target`` atomically, refusing a file whose SHA-256 differs."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
        got = sha256_of(tmp)
        if got != sha256:
            raise OSError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}")
        os.replace(tmp, target)  # atomic on POSIX and Windows: no half-written cache file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_fashion_mnist(
    root: str | os.PathLike = "~/.cache/trainability/fashion-mnist",
    *,
    download: bool = False,
    pixels: str = "unit",
    flatten: bool = True,
    base_url: str = FASHION_MNIST_URL,
    files: dict[str, str] | None = None,
) -> Dataset:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 28×28 greyscale clothing images.

    Files are looked for in ``root``; missing ones are downloaded only if
    ``download=True``. Each file's SHA-256 is checked, and a download is written to a
    temporary file and renamed into place, so an interrupted download never leaves a
    corrupt cache. ``pixels`` is ``"bytes"`` (0–255, as stored), ``"raw"`` (the same),
    ``"unit"`` or ``"standardized"``.

    >>> ds = load_fashion_mnist(download=True)  # doctest: +SKIP
    """
    check_choice("pixels", pixels, SCALES)
    files = FASHION_MNIST_FILES if files is None else files
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, digest in files.items():
        path = root / name
        if not path.exists():
            if not download:
                raise FileNotFoundError(
                    f"{path} is missing; call load_fashion_mnist(download=True) when online"
                )
            _fetch(base_url + name, path, digest)
        elif sha256_of(path) != digest:
            raise OSError(f"{path} is corrupt: its sha256 is not {digest}; delete it and download again")
        arrays[name.split("-")[0] + "-" + name.split("-")[1]] = read_idx(path)
    x_train = arrays["train-images"].astype(np.float32)
    x_test = arrays["t10k-images"].astype(np.float32)
    shape = (-1, 28 * 28) if flatten else (-1, 1, 28, 28)
    ds = Dataset(
        "fashion-mnist",
        torch.from_numpy(x_train.reshape(shape)),
        torch.from_numpy(arrays["train-labels"].astype(np.int64)),
        torch.from_numpy(x_test.reshape(shape)),
        torch.from_numpy(arrays["t10k-labels"].astype(np.int64)),
        10,
    )
    return _rescale(ds, "raw" if pixels == "bytes" else pixels, 255.0)
