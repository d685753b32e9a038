"""helpers.data: the offline data sets, their splits and scales, and the Fashion-MNIST loader."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.datasets import load_digits as sk_digits

from helpers import data
from helpers.data import Dataset

# -- digits -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_digits():
    return data.load_digits("raw")


def test_digits_raw_matches_sklearn(raw_digits):
    bunch = sk_digits()
    ds = raw_digits
    assert ds.name == "digits" and ds.n_classes == 10
    assert len(ds.x_train) + len(ds.x_test) == len(bunch.target) == 1797
    assert len(ds.x_test) == round(0.25 * 1797)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.shape[1:] == (64,) and ds.n_features == 64 and ds.input_shape == (64,)
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 16.0
    # The split is a permutation of sklearn's examples: same label counts, same pixel sum.
    y = torch.cat([ds.y_train, ds.y_test]).numpy()
    np.testing.assert_array_equal(np.bincount(y), np.bincount(bunch.target))
    x = torch.cat([ds.x_train, ds.x_test]).double()
    assert float(x.sum()) == pytest.approx(bunch.data.sum())
    # and every example keeps its own label
    lookup = {row.tobytes(): t for row, t in zip(bunch.data.astype(np.float32), bunch.target)}
    assert all(lookup[row.tobytes()] == t for row, t in zip(ds.x_train.numpy()[:200], ds.y_train.numpy()[:200]))


def test_digits_scales(raw_digits):
    raw = raw_digits
    byts = data.load_digits("bytes")
    unit = data.load_digits("unit")
    std = data.load_digits("standardized")
    torch.testing.assert_close(byts.x_train, raw.x_train * 255 / 16)
    torch.testing.assert_close(unit.x_test, raw.x_test / 16)
    assert float(byts.x_train.max()) == 255.0 and float(unit.x_train.max()) == 1.0
    # standardized with the training split's statistics: z-scores on train
    varying = raw.x_train.std(0) > 0
    torch.testing.assert_close(std.x_train.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(std.x_train.std(0)[varying], torch.ones(int(varying.sum())), atol=1e-4, rtol=0)
    # the test split uses the train statistics, not its own
    mean, sd = raw.x_train.mean(0), raw.x_train.std(0).clamp_min(1e-6)
    torch.testing.assert_close(std.x_test, (raw.x_test - mean) / sd)
    assert torch.equal(std.y_train, raw.y_train)


def test_digits_images_and_seed(raw_digits):
    images = data.load_digits("raw", flatten=False)
    assert images.input_shape == (1, 8, 8) and images.n_features == 64
    torch.testing.assert_close(images.x_train.reshape(-1, 64), raw_digits.x_train)
    again = data.load_digits("raw")
    other = data.load_digits("raw", seed=1)
    assert torch.equal(again.x_train, raw_digits.x_train)
    assert not torch.equal(other.y_train, raw_digits.y_train)
    small_test = data.load_digits("raw", test_fraction=0.1)
    assert len(small_test.x_test) == round(0.1 * 1797)


def test_dataset_repr_and_properties():
    ds = Dataset("toy", torch.zeros(6, 2, 3), torch.zeros(6, dtype=torch.int64), torch.zeros(2, 2, 3),
                 torch.zeros(2, dtype=torch.int64), 2)
    assert ds.n_features == 6 and ds.input_shape == (2, 3)
    assert repr(ds) == "Dataset('toy', train=(6, 2, 3), test=(2, 2, 3), n_classes=2)"
    with pytest.raises(AttributeError):
        ds.name = "other"  # frozen


# -- MNIST-1D and synthetic sets ----------------------------------------------------------------


def test_mnist1d_offline_and_deterministic():
    state = np.random.get_state()  # noqa: NPY002 -- the loader must leave NumPy's global state alone
    a = data.load_mnist1d(200, seed=3)
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(u, v) if isinstance(u, np.ndarray) else u == v for u, v in zip(state, after))
    b = data.load_mnist1d(200, seed=3)
    assert a.name == "mnist1d" and a.n_features == 40 and a.n_classes == 10
    assert len(a.x_train) + len(a.x_test) == 200 and len(a.x_test) == 40
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert set(torch.cat([a.y_train, a.y_test]).tolist()) <= set(range(10))
    c = data.load_mnist1d(200, seed=4)
    assert not torch.equal(a.x_train, c.x_train)


def test_blobs_cluster_around_centres():
    ds = data.make_blobs(2000, 3, 4, spread=0.1, seed=1)
    assert ds.n_features == 4 and ds.n_classes == 3
    x, y = torch.cat([ds.x_train, ds.x_test]), torch.cat([ds.y_train, ds.y_test])
    for k in range(3):
        cluster = x[y == k]
        assert float(cluster.std(0).max()) < 0.15  # spread 0.1 around one centre
    assert torch.equal(data.make_blobs(50, seed=2).x_test, data.make_blobs(50, seed=2).x_test)


@settings(max_examples=30, deadline=None)
@given(
    n_samples=st.integers(2, 400),
    n_classes=st.integers(2, 6),
    n_features=st.integers(1, 5),
    test_fraction=st.floats(0.01, 0.9),
    seed=st.integers(0, 2**31 - 1),
)
def test_blobs_split_sizes(n_samples, n_classes, n_features, test_fraction, seed):
    ds = data.make_blobs(n_samples, n_classes, n_features, seed=seed, test_fraction=test_fraction)
    n_test = len(ds.x_test)
    assert n_test + len(ds.x_train) == n_samples
    assert n_test == min(max(1, round(test_fraction * n_samples)), n_samples - 1)
    assert len(ds.x_train) >= 1 and n_test >= 1  # both splits always usable
    assert ds.x_train.shape[1:] == (n_features,) and len(ds.y_train) == len(ds.x_train)
    assert int(torch.cat([ds.y_train, ds.y_test]).max()) < n_classes


# -- IDX files -----------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    array=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=7)),
    compressed=st.booleans(),
)
def test_read_idx_round_trip(tmp_path_factory, write_idx, array, compressed):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compressed else "a.idx")
    write_idx(path, array)
    back = data.read_idx(path)
    assert back.dtype == np.uint8 and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_read_idx_rejects_bad_files(tmp_path, write_idx):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc")  # type 0x0D = float
    with pytest.raises(ValueError, match="bad magic number"):
        data.read_idx(bad)
    short = write_idx(tmp_path / "short.idx", np.arange(6, dtype=np.uint8))
    short.write_bytes(short.read_bytes()[:-2])
    with pytest.raises(ValueError, match="truncated: header says 6 values, found 4"):
        data.read_idx(short)


def test_sha256_of(tmp_path):
    path = tmp_path / "blob.bin"
    payload = os.urandom(3 << 20)  # more than one 1 MiB chunk
    path.write_bytes(payload)
    assert data.sha256_of(path) == hashlib.sha256(payload).hexdigest()


# -- Fashion-MNIST, on tiny IDX files written here (no network) ----------------------------------

N_TRAIN, N_TEST = 6, 3


@pytest.fixture
def fashion_files(tmp_path, write_idx):
    """A directory with the four Fashion-MNIST file names holding tiny data, and their SHA-256."""
    rng = np.random.default_rng(0)
    source = tmp_path / "source"
    source.mkdir()
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, N_TRAIN, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, N_TEST, dtype=np.uint8),
    }
    digests = {name: data.sha256_of(write_idx(source / name, a)) for name, a in arrays.items()}
    return source, digests, arrays


def test_fashion_loads_from_cache(fashion_files):
    source, digests, arrays = fashion_files
    ds = data.load_fashion_mnist(source, files=digests, pixels="bytes")
    assert ds.name == "fashion-mnist" and ds.n_classes == 10
    assert ds.x_train.shape == (N_TRAIN, 784) and ds.x_test.shape == (N_TEST, 784)
    np.testing.assert_array_equal(ds.x_train.numpy(), arrays["train-images-idx3-ubyte.gz"].reshape(N_TRAIN, -1))
    np.testing.assert_array_equal(ds.y_test.numpy(), arrays["t10k-labels-idx1-ubyte.gz"])
    assert ds.y_train.dtype == torch.int64 and ds.x_train.dtype == torch.float32
    unit = data.load_fashion_mnist(source, files=digests, pixels="unit", flatten=False)
    assert unit.input_shape == (1, 28, 28)
    torch.testing.assert_close(unit.x_train.reshape(N_TRAIN, -1), ds.x_train / 255)
    raw = data.load_fashion_mnist(source, files=digests, pixels="raw")
    assert torch.equal(raw.x_test, ds.x_test)
    std = data.load_fashion_mnist(source, files=digests, pixels="standardized")
    torch.testing.assert_close(std.x_train.mean(0), torch.zeros(784), atol=1e-5, rtol=0)


def test_fashion_checksum_mismatch_in_cache(fashion_files):
    source, digests, _ = fashion_files
    wrong = dict(digests, **{"t10k-labels-idx1-ubyte.gz": "0" * 64})
    with pytest.raises(OSError, match=r"t10k-labels-idx1-ubyte\.gz is corrupt"):
        data.load_fashion_mnist(source, files=wrong)


def test_fashion_missing_without_download(tmp_path, fashion_files):
    _, digests, _ = fashion_files
    empty = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz is missing.*download=True"):
        data.load_fashion_mnist(empty, files=digests)
    assert list(empty.iterdir()) == []


def test_fashion_download_from_file_url(tmp_path, fashion_files):
    source, digests, arrays = fashion_files
    cache = tmp_path / "cache"
    ds = data.load_fashion_mnist(cache, download=True, base_url=source.as_uri() + "/", files=digests, pixels="bytes")
    assert sorted(p.name for p in cache.iterdir()) == sorted(digests)  # cached, no leftover .part files
    for name, digest in digests.items():
        assert data.sha256_of(cache / name) == digest
    np.testing.assert_array_equal(ds.y_train.numpy(), arrays["train-labels-idx1-ubyte.gz"])
    # A second call reads the cache: it works with the source gone.
    for p in source.iterdir():
        p.unlink()
    again = data.load_fashion_mnist(cache, files=digests, pixels="bytes")
    assert torch.equal(again.x_test, ds.x_test)


def test_fashion_download_bad_checksum_leaves_nothing(tmp_path, fashion_files):
    source, digests, _ = fashion_files
    cache = tmp_path / "cache"
    wrong = dict(digests, **{"train-images-idx3-ubyte.gz": "f" * 64})
    with pytest.raises(OSError, match="checksum mismatch.*train-images-idx3-ubyte.gz"):
        data.load_fashion_mnist(cache, download=True, base_url=source.as_uri() + "/", files=wrong)
    assert list(cache.iterdir()) == []  # neither the corrupt file nor a temporary one


def test_fashion_download_missing_source_leaves_nothing(tmp_path, fashion_files):
    _, digests, _ = fashion_files
    cache = tmp_path / "cache"
    nowhere = (tmp_path / "nowhere").as_uri() + "/"
    with pytest.raises(OSError):
        data.load_fashion_mnist(cache, download=True, base_url=nowhere, files=digests)
    assert list(cache.iterdir()) == []


def test_fashion_default_checksums_are_sha256():
    assert len(data.FASHION_MNIST_FILES) == 4
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in data.FASHION_MNIST_FILES.values())
