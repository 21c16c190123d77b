"""Image data for survey §1.1 and later: scikit-learn's 8x8 digits (offline, the default) or real 28x28
MNIST from its IDX files (checked against the published SHA-256; downloaded only on request).

Both return the same `Images` contract: flattened float32 tensors in [0, 1], int64 labels, a train/test
split, so a notebook switches with one parameter (`load_images("digits")` / `load_images("mnist")`).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch


class DataError(RuntimeError):
    """A missing, corrupt or unreadable data file; the message says how to fix it."""


class Images(NamedTuple):
    x_train: torch.Tensor  # (n, d) float32 in [0, 1]
    y_train: torch.Tensor  # (n,) int64
    x_test: torch.Tensor
    y_test: torch.Tensor
    image_shape: tuple  # (h, w): d = h * w
    source: str  # "digits (8x8, scikit-learn)" or "MNIST (28x28)"


def load_digits_images(test_fraction: float = 0.2, seed: int = 0) -> Images:
    """scikit-learn's 1,797 handwritten digits (8x8, 17 grey levels) with a stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    return Images(
        torch.from_numpy(x_tr), torch.from_numpy(y_tr).long(),
        torch.from_numpy(x_te), torch.from_numpy(y_te).long(),
        (8, 8), "digits (8x8, scikit-learn)",
    )


# The four MNIST files and the SHA-256 of each as distributed (gzip). Raw (gunzipped) files are checked
# by their IDX header and size instead, since only the gzip checksums are published.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip or not) into a numpy array; a clear DataError if it is not valid IDX."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path} could not be read ({e}): it is corrupt or truncated; delete it and fetch it again") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number): delete it and fetch it again")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataError(f"{path} has an unknown IDX data type 0x{raw[2]:02x}: delete it and fetch it again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path} is truncated or corrupt: its header promises {expected} bytes of data, "
            f"the file has {len(raw) - header}; delete it and fetch it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_mnist_file(root: Path, stem: str) -> Path | None:
    for candidate in (root / f"{stem}.gz", root / stem, root / "MNIST" / "raw" / f"{stem}.gz", root / "MNIST" / "raw" / stem):
        if candidate.exists():
            return candidate
    return None


def download_mnist(root: str | Path) -> Path:
    """Fetch the four gzip files into `root` (only when asked: nothing downloads by default)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stem in MNIST_FILES.values():
        target = root / f"{stem}.gz"
        if not target.exists():
            try:
                urllib.request.urlretrieve(MNIST_MIRROR + target.name, target)
            except OSError as e:
                raise DataError(
                    f"could not download {target.name} ({e}); without internet use load_images('digits'), "
                    f"or copy the MNIST IDX files into {root}"
                ) from e
    return root


def load_mnist_images(
    root: str | Path | None = None, checksums: dict | None = MNIST_SHA256, download: bool = False
) -> Images:
    """Real MNIST (28x28) from the standard IDX files in `root` (default: `$RLGEN_DATA`, else `data/mnist`).

    Gzip files are checked against `checksums` (the published SHA-256; pass None to skip, as the tests'
    fixtures do). With `download=True` missing files are fetched first (e.g. on Colab).
    """
    root = Path(root or os.environ.get("RLGEN_DATA") or Path(__file__).resolve().parent.parent / "data" / "mnist")
    if download:
        download_mnist(root)
    arrays = {}
    for key, stem in MNIST_FILES.items():
        path = _find_mnist_file(root, stem)
        if path is None:
            raise DataError(
                f"MNIST file {stem}(.gz) not found in {root}: put the four IDX files there (or set RLGEN_DATA "
                "to their folder), call load_mnist_images(download=True) where there is internet, "
                "or use the offline default load_images('digits')"
            )
        if path.suffix == ".gz" and checksums is not None and path.name in checksums:
            actual = sha256_of(path)
            if actual != checksums[path.name]:
                raise DataError(
                    f"{path} is corrupt: SHA-256 {actual[:16]}... differs from the published "
                    f"{checksums[path.name][:16]}...; delete it and download it again"
                )
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(f"MNIST {split} split has {n_img} images but {n_lab} labels: the files do not belong together")
    h, w = arrays["train_images"].shape[1:]

    def images(a):
        return torch.from_numpy(a.reshape(len(a), -1).astype(np.float32) / 255.0)

    def labels(a):
        return torch.from_numpy(a.astype(np.int64))

    return Images(
        images(arrays["train_images"]), labels(arrays["train_labels"]),
        images(arrays["test_images"]), labels(arrays["test_labels"]),
        (int(h), int(w)), f"MNIST ({h}x{w})",
    )


def load_images(source: str = "digits", **kwargs) -> Images:
    """`"digits"` (offline default) or `"mnist"` (real MNIST; see `load_mnist_images`)."""
    if source == "digits":
        return load_digits_images(**kwargs)
    if source == "mnist":
        return load_mnist_images(**kwargs)
    raise ValueError(f"unknown image source {source!r}: use 'digits' (offline default) or 'mnist'")
