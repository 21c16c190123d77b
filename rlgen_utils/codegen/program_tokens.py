"""The programs' language (survey §4.2, code generation): a tiny subset of Python expressions over two integer
arguments `x` and `y`, written token by token by a generator, as Codex and CodeRL write Python (Chen et al. 2021;
Le et al. 2022) — only the grammar is smaller.

A program is the body of `def f(x, y): return <expression>`. Tokens: the names `x`, `y`; the digits `0`–`9`;
`+ - * // %`; the comparisons `> < ==`; the calls `abs( min( max(` (closed by `)`, arguments split by `,`);
brackets; the conditional `a if x > b else c`; and the end token. A sampled sequence need not parse: a syntax
error is a failed program, found when the program is compiled (inside the sandbox, never in the caller).
"""
from __future__ import annotations

from typing import Iterable, Sequence

PROGRAM_TOKENS = ("x", "y", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "+", "-", "*", "//", "%",
                  ">", "<", "==", "(", ")", ",", "abs(", "min(", "max(", "if", "else", "<end>")
PROGRAM_END = PROGRAM_TOKENS.index("<end>")
TOKEN_ID = {t: i for i, t in enumerate(PROGRAM_TOKENS)}
DIGITS = tuple(str(d) for d in range(10))
ARITHMETIC = ("+", "-", "*", "//", "%")
COMPARISONS = (">", "<", "==")
CALLS = ("abs(", "min(", "max(")
_SPACED = {"if", "else", "+", "-", "*", "//", "%", ">", "<", "=="}


def split_tokens(expression: str) -> list[str]:
    """The tokens of a space-separated expression ("abs( x - y )" → ["abs(", "x", "-", "y", ")"]); a number is
    written digit by digit ("10" → ["1", "0"])."""
    tokens = [t for word in expression.split() for t in (list(word) if word.isdigit() else [word])]
    unknown = [t for t in tokens if t not in TOKEN_ID]
    if unknown:
        raise ValueError(f"tokens {unknown} are not in the program language: use {PROGRAM_TOKENS}")
    return tokens


def encode_program(expression: str) -> list[int]:
    """Token ids of a space-separated expression, followed by the end token."""
    return [TOKEN_ID[t] for t in split_tokens(expression)] + [PROGRAM_END]


def to_source(token_ids: Iterable[int]) -> str:
    """The Python expression of a token-id sequence, up to its first end token (compact, readable spacing).

    An id outside the language becomes "?", so the program fails to compile, as it should."""
    out = []
    for i in token_ids:
        i = int(i)
        if i == PROGRAM_END:
            break
        if not 0 <= i < len(PROGRAM_TOKENS):  # an id outside the language (a prompt token): unparseable
            out.append(" ? ")
            continue
        tok = PROGRAM_TOKENS[i]
        out.append(f" {tok} " if tok in _SPACED else (", " if tok == "," else tok))
    return "".join(out).replace("  ", " ").strip()


def batch_to_sources(tokens: Sequence[Sequence[int]]) -> list[str]:
    """`to_source` of every row of a (B, T) batch of token ids (a tensor or nested lists)."""
    return [to_source(row) for row in (tokens.tolist() if hasattr(tokens, "tolist") else tokens)]


def mutate_program(tokens: list[str], rng) -> list[str]:
    """One plausible bug: a digit, operator, comparison, call or variable swapped for another of its kind.

    `rng` is a numpy Generator. Used to write the incorrect half of the pre-training corpus, the way a model
    trained on real code has seen near-miss programs; the result may still be correct by chance.
    """
    kinds = [DIGITS, ARITHMETIC, COMPARISONS, CALLS, ("x", "y")]
    where = [i for i, t in enumerate(tokens) if any(t in k for k in kinds)]
    if not where:
        return list(tokens)
    i = int(rng.choice(where))
    kind = next(k for k in kinds if tokens[i] in k)
    choices = [t for t in kind if t != tokens[i]]
    out = list(tokens)
    out[i] = str(rng.choice(choices))
    return out
