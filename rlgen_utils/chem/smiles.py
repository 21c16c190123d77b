"""SMILES data and tokenization for the chemical language model of notebook 4.5 (survey §4, AI for science).

The data is RDKit's shipped NCI sample (`RDConfig.RDDataDir/NCI/first_5K.smi`: the first 5,000 structures of
the NCI open database), read offline from the installed package. The tokenizer is the SMILES regex of
Schwaller et al. (2018, "Found in translation", the Molecular Transformer), the one REINVENT (Olivecrona et al.
2017) and its successors use: bracket atoms ("[nH]", "[O-]") and two-letter halogens ("Br", "Cl") are one
token, as are two-digit ring closures ("%10"); everything else is one character.
"""
from __future__ import annotations

import os
import re

import torch
from rdkit import Chem, RDConfig, RDLogger

SMILES_REGEX = re.compile(
    r"(\[[^\]]+\]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])")
END = "<end>"


def nci_path() -> str:
    """Where RDKit keeps its NCI sample (inside the installed rdkit package)."""
    return os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")


def load_nci_smiles(canonicalise: bool = True, single_fragment: bool = True, max_tokens: int | None = None) -> list[str]:
    """The NCI sample shipped with RDKit, as a list of SMILES (file order, duplicates removed).

    `canonicalise` rewrites each as RDKit's canonical SMILES (aromatic form: shorter and one spelling per
    molecule) and drops those RDKit cannot parse; `single_fragment` drops salts and mixtures (a "." in the
    SMILES); `max_tokens` keeps only SMILES of at most that many tokens.
    """
    path = nci_path()
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"RDKit's NCI sample (Data/NCI/first_5K.smi) is not in this RDKit installation (looked in "
            f"RDConfig.RDDataDir = {RDConfig.RDDataDir!r}); install the PyPI wheel `rdkit`, which ships it")
    with open(path) as f:
        raw = [line.split()[0] for line in f if line.strip()]
    out, seen = [], set()
    RDLogger.DisableLog("rdApp.*")
    for smi in raw:
        if canonicalise:
            mol = Chem.MolFromSmiles(smi)
            if mol is None:
                continue
            smi = Chem.MolToSmiles(mol)
        if single_fragment and "." in smi:
            continue
        if max_tokens is not None and len(tokenize(smi)) > max_tokens:
            continue
        if smi not in seen:
            seen.add(smi)
            out.append(smi)
    return out


def tokenize(smiles: str) -> list[str]:
    """Split a SMILES into tokens; raises ValueError when a character is not covered (so "".join is exact)."""
    tokens = SMILES_REGEX.findall(smiles)
    if "".join(tokens) != smiles:
        raise ValueError(f"the SMILES regex does not cover every character of {smiles!r}")
    return tokens


class SmilesVocabulary:
    """Token ids for a corpus of SMILES: id 0 is the end token, then the corpus' tokens in sorted order.

    `encode` gives a (B, T) long tensor, each row the tokens then the end token, padded with end tokens (so
    `rlgen_utils.sequences.masks.through_end(tokens, vocab.end)` marks the scored positions); `decode` reads
    a row up to its first end token. A `SequencePolicy(len(vocab))` adds its own begin-of-sequence input.
    """

    def __init__(self, smiles: list[str]):
        tokens = sorted({t for s in smiles for t in tokenize(s)})
        self.itos = [END] + tokens
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.end = 0

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, smiles: list[str], length: int | None = None) -> torch.Tensor:
        """(B, length) token ids; `length` defaults to the longest SMILES + 1 (room for its end token)."""
        ids = [[self.stoi[t] for t in tokenize(s)] for s in smiles]
        length = length or max(len(x) for x in ids) + 1
        if any(len(x) >= length for x in ids):
            raise ValueError(f"a SMILES has {max(len(x) for x in ids)} tokens: no room for the end token in {length}")
        out = torch.full((len(ids), length), self.end, dtype=torch.long)
        for i, x in enumerate(ids):
            out[i, :len(x)] = torch.tensor(x, dtype=torch.long)
        return out

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """The SMILES of each row of a (B, T) tensor, read up to the first end token."""
        out = []
        for row in tokens.tolist():
            chars = []
            for i in row:
                if i == self.end:
                    break
                chars.append(self.itos[i])
            out.append("".join(chars))
        return out
