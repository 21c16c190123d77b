"""Molecules for §4's AI-for-science notebook (4.5): SMILES data, a SMILES tokenizer, and RDKit metrics.

`smiles` loads RDKit's shipped NCI set and tokenizes SMILES (the regex of Schwaller et al. 2018, as in
REINVENT); `metrics` scores generated SMILES with RDKit (validity, uniqueness, novelty, QED, sulphur-free
fraction, internal diversity).
"""
from .metrics import (canonical, internal_diversity, is_valid, novelty, qed_scores, sulfur_free, sulfur_free_scores,
                      uniqueness, validity)
from .smiles import SmilesVocabulary, load_nci_smiles, tokenize

__all__ = ["SmilesVocabulary", "canonical", "internal_diversity", "is_valid", "load_nci_smiles", "novelty",
           "qed_scores", "sulfur_free", "sulfur_free_scores", "tokenize", "uniqueness", "validity"]
