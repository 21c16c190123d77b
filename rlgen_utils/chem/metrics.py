"""RDKit metrics of generated molecules (notebook 4.5, survey §4; the measures of Olivecrona et al. 2017 and of
the MOSES/GuacaMol benchmarks): validity, uniqueness, novelty, QED, sulphur-free fraction, internal diversity.

A SMILES is *valid* when RDKit parses and sanitises it to a non-empty molecule. Uniqueness and novelty compare
canonical SMILES (RDKit's `MolToSmiles`), so two spellings of one molecule count once.
"""
from __future__ import annotations

import numpy as np
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import QED, rdFingerprintGenerator

RDLogger.DisableLog("rdApp.*")  # a generator's invalid SMILES would otherwise print one parse error each


def mol_from_smiles(smiles: str):
    """The RDKit molecule, or None when the SMILES is empty or RDKit cannot parse/sanitise it."""
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    return mol if mol is not None and mol.GetNumAtoms() > 0 else None


def is_valid(smiles: str) -> bool:
    return mol_from_smiles(smiles) is not None


def canonical(smiles: str) -> str | None:
    """RDKit's canonical SMILES, or None for an invalid one."""
    mol = mol_from_smiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def validity(smiles: list[str]) -> float:
    """Fraction of the SMILES that are valid molecules."""
    return float(np.mean([is_valid(s) for s in smiles])) if smiles else 0.0


def uniqueness(smiles: list[str]) -> float:
    """Distinct molecules / valid molecules (canonical SMILES; 0 when none is valid)."""
    can = [c for c in map(canonical, smiles) if c is not None]
    return len(set(can)) / len(can) if can else 0.0


def novelty(smiles: list[str], training: set[str]) -> float:
    """Fraction of the distinct valid molecules whose canonical SMILES is not in `training` (canonical SMILES)."""
    can = {c for c in map(canonical, smiles) if c is not None}
    return len(can - set(training)) / len(can) if can else 0.0


def qed_scores(smiles: list[str]) -> np.ndarray:
    """QED (Bickerton et al. 2012, `rdkit.Chem.QED.qed`) of each SMILES; NaN for an invalid one."""
    out = np.full(len(smiles), np.nan)
    for i, s in enumerate(smiles):
        mol = mol_from_smiles(s)
        if mol is not None:
            out[i] = QED.qed(mol)
    return out


def sulfur_free(smiles: str) -> bool | None:
    """True when the molecule has no sulphur atom (atomic number 16), None when the SMILES is invalid."""
    mol = mol_from_smiles(smiles)
    return None if mol is None else all(a.GetAtomicNum() != 16 for a in mol.GetAtoms())


def sulfur_free_scores(smiles: list[str]) -> np.ndarray:
    """The score of REINVENT's first task (the authors' `no_sulphur`): 1 for a valid molecule without
    sulphur, 0 for one with sulphur, 0 for an invalid SMILES."""
    return np.array([1.0 if sulfur_free(s) else 0.0 for s in smiles])


def internal_diversity(smiles: list[str], radius: int = 2, n_bits: int = 2048) -> float:
    """Mean Tanimoto distance 1 − T(a, b) over all pairs of distinct valid molecules (Morgan fingerprints);
    0 when fewer than two are valid and distinct."""
    mols = [mol_from_smiles(c) for c in {c for c in map(canonical, smiles) if c is not None}]
    if len(mols) < 2:
        return 0.0
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    fps = [gen.GetFingerprint(m) for m in mols]
    total = 0.0
    for i in range(1, len(fps)):
        total += float(np.sum(DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])))
    pairs = len(fps) * (len(fps) - 1) / 2
    return 1.0 - total / pairs
