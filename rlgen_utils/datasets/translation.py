"""A synthetic parallel corpus for survey §2.1 (notebook 2.1b): a made-up language translated by word
rules, idioms that translate as a unit and optional particles, so BLEU has something to reward.
Generated offline from a seed; token conventions are those of `make_translation_pairs`."""
from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np
import torch


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
