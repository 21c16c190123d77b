"""Data loaders and generators, offline by default (ARCHITECTURE.md, "data").

Images: scikit-learn's 8x8 digits (shipped with the package) or real 28x28 MNIST from its IDX files.
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


# ----------------------------------------------------------------------------- synthetic translation (§2.1)
import random  # noqa: E402


class ParallelCorpus(NamedTuple):
    """Source/target token-id pairs of a synthetic translation task (`make_translation_pairs`)."""
    src: torch.Tensor  # (n, S) int64 source word ids, padded with src_pad = src_vocab
    tgt: torch.Tensor  # (n, T) int64 target word ids, then one eos = tgt_vocab, then pad = tgt_vocab + 1
    src_vocab: int  # number of source words
    tgt_vocab: int  # number of target words (eos, pad and a begin id tgt_vocab + 2 come after them)
    rules: dict  # the hidden "grammar": idioms, fertile words, adjectives, lexicon


def translation_rules(n_words: int = 24, n_idioms: int = 4, n_fertile: int = 4, n_adjectives: int = 6,
                      n_nouns: int = 0, language_seed: int = 0) -> dict:
    """The fixed rules of one synthetic language pair (same `language_seed` → same language).

    idioms: source bigrams that translate to ONE target word (many-to-one); fertile: source words that
    translate to TWO target words (one-to-many); adjectives: source words that swap with the next unit;
    nouns: words that may be followed by an optional particle (target id `particle`, see `translate`);
    lexicon: source word or idiom → tuple of target words.
    """
    if n_idioms + n_fertile + n_adjectives + n_nouns > n_words:
        raise ValueError(f"n_idioms + n_fertile + n_adjectives + n_nouns = {n_idioms + n_fertile + n_adjectives + n_nouns} exceeds n_words = {n_words}")
    rng = np.random.default_rng(language_seed)
    words = rng.permutation(n_words).tolist()
    fertile, adjectives = words[:n_fertile], words[n_fertile:n_fertile + n_adjectives]
    plain = words[n_fertile:]  # adjectives and the remaining words translate one-to-one
    idioms = []
    while len(idioms) < n_idioms:  # bigrams of plain, non-adjective words, no word in two idioms
        a, b = (int(x) for x in rng.choice(words[n_fertile + n_adjectives:], 2, replace=False))
        if all(a not in i and b not in i for i in idioms):
            idioms.append((a, b))
    nouns = words[n_words - n_nouns:] if n_nouns else []
    n_targets = len(plain) + 2 * n_fertile + n_idioms + 1  # + the particle
    targets = iter(rng.permutation(n_targets).tolist())
    particle = next(targets)
    lexicon = {w: (next(targets),) for w in plain}
    lexicon.update({w: (next(targets), next(targets)) for w in fertile})
    lexicon.update({i: (next(targets),) for i in idioms})
    return {"n_words": n_words, "n_targets": n_targets, "idioms": idioms, "fertile": fertile,
            "adjectives": adjectives, "nouns": nouns, "particle": particle, "lexicon": lexicon}


def translate(sentence: list, rules: dict, particle_prob: float = 0.0, rng: random.Random | None = None) -> list:
    """Apply the rules to one source sentence (list of word ids) → target word ids (no eos).

    1. idioms (left to right, non-overlapping) become one unit; every other word is its own unit;
    2. an adjective unit swaps with the unit after it (noun-adjective order, as in French);
    3. the last unit moves to the front (verb-final source, verb-initial target);
    4. each unit is replaced by its target words (fertile words give two);
    5. a noun's word is followed by the particle with probability `particle_prob` (an optional word, so
       the references vary and a likelihood-trained greedy decoder, which leaves it out, comes out short).
    """
    idioms, units, i = set(rules["idioms"]), [], 0
    while i < len(sentence):
        pair = tuple(sentence[i:i + 2])
        units.append(pair if pair in idioms else sentence[i])
        i += 2 if pair in idioms else 1
    adjectives, i = set(rules["adjectives"]), 0
    while i < len(units) - 1:
        if not isinstance(units[i], tuple) and units[i] in adjectives:
            units[i], units[i + 1] = units[i + 1], units[i]
            i += 2
        else:
            i += 1
    units = units[-1:] + units[:-1]
    nouns, out = set(rules["nouns"]), []
    for u in units:
        out.extend(rules["lexicon"][u])
        if particle_prob and u in nouns and rng.random() < particle_prob:
            out.append(rules["particle"])
    return out


def make_translation_pairs(n_pairs: int, min_len: int = 4, max_len: int = 9, idiom_prob: float = 0.15,
                           particle_prob: float = 0.0, seed: int = 0, **rule_kwargs) -> ParallelCorpus:
    """A synthetic parallel corpus for BLEU-trained seq2seq (notebook 2.1b): random source sentences of
    `min_len`..`max_len` words (an idiom bigram is planted at each position with `idiom_prob`) and their
    translations under `translation_rules(**rule_kwargs)`. Different `seed`s give disjoint-ish samples of
    the same language (pass the same `language_seed`)."""
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    rules = translation_rules(**rule_kwargs)
    rng = random.Random(seed + 1_000_003)
    sources, targets = [], []
    for _ in range(n_pairs):
        length, sentence = rng.randint(min_len, max_len), []
        while len(sentence) < length:
            if length - len(sentence) >= 2 and rng.random() < idiom_prob:
                sentence.extend(rng.choice(rules["idioms"]))
            else:
                sentence.append(rng.randrange(rules["n_words"]))
        sources.append(sentence)
        targets.append(translate(sentence, rules, particle_prob, rng) + [rules["n_targets"]])  # + eos
    n_src, n_tgt = rules["n_words"], rules["n_targets"]
    S, T = max(map(len, sources)), max(map(len, targets))
    src = torch.tensor([s + [n_src] * (S - len(s)) for s in sources], dtype=torch.long)
    tgt = torch.tensor([t + [n_tgt + 1] * (T - len(t)) for t in targets], dtype=torch.long)
    return ParallelCorpus(src, tgt, n_src, n_tgt, rules)
