"""rlgen_utils.datasets.images: the digits loader and the MNIST IDX loader on a small fixture written here."""
import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from rlgen_utils.datasets.images import MNIST_FILES, DataError, load_images, load_mnist_images, read_idx


def write_idx(path, array, compress):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


@pytest.fixture(params=[True, False], ids=["gzip", "raw"])
def mnist_dir(tmp_path, request):
    rng = np.random.default_rng(0)
    sizes = {"train": 12, "test": 5}
    for key, stem in MNIST_FILES.items():
        split, kind = key.split("_")
        n = sizes[split]
        array = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if kind == "images" else rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(tmp_path / (stem + (".gz" if request.param else "")), array, request.param)
    return tmp_path


def checksums_of(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.gz")}


def test_digits_contract():
    data = load_images("digits")
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.image_shape == (8, 8) and set(data.y_test.tolist()) == set(range(10))


def test_mnist_idx_fixture_loads_with_the_same_contract(mnist_dir):
    data = load_mnist_images(mnist_dir, checksums=checksums_of(mnist_dir))
    assert data.x_train.shape == (12, 784) and data.x_test.shape == (5, 784)
    assert data.x_train.dtype == torch.float32 and data.y_test.dtype == torch.int64
    assert data.image_shape == (28, 28) and float(data.x_train.max()) <= 1.0
    raw = read_idx(next(mnist_dir.glob("train-images*")))
    assert torch.allclose(data.x_train[0], torch.from_numpy(raw[0].reshape(-1) / 255.0).float())


def test_mnist_corrupt_file_is_reported(mnist_dir):
    sums = checksums_of(mnist_dir)
    target = next(mnist_dir.glob("t10k-labels*"))
    if target.suffix == ".gz":
        target.write_bytes(target.read_bytes()[:-3] + b"xyz")
        with pytest.raises(DataError, match="corrupt.*SHA-256.*download it again"):
            load_mnist_images(mnist_dir, checksums=sums)
    else:
        target.write_bytes(target.read_bytes()[:-2])  # truncated raw IDX
        with pytest.raises(DataError, match="truncated or corrupt.*fetch it again"):
            load_mnist_images(mnist_dir, checksums=sums)


def test_mnist_published_checksums_reject_a_fixture(mnist_dir):
    if not list(mnist_dir.glob("*.gz")):  # raw files are checked by their IDX header, not a checksum
        assert load_mnist_images(mnist_dir).x_train.shape == (12, 784)
        return
    with pytest.raises(DataError, match="differs from the published"):
        load_mnist_images(mnist_dir)


def test_mnist_missing_file_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("RLGEN_DATA", raising=False)
    with pytest.raises(DataError, match=r"not found in .*RLGEN_DATA.*load_images\('digits'\)"):
        load_mnist_images(tmp_path)


def test_not_an_idx_file(tmp_path):
    bad = tmp_path / "x.idx"
    bad.write_bytes(b"hello world")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(bad)


def test_unknown_source():
    with pytest.raises(ValueError, match="use 'digits'"):
        load_images("cifar")
