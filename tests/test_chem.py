"""rlgen_utils.chem against independent references: the raw NCI file and RDKit called directly, brute force."""
import itertools

import numpy as np
import pytest
import torch
from rdkit import Chem, DataStructs
from rdkit.Chem import QED, rdFingerprintGenerator

from rlgen_utils.chem import (SmilesVocabulary, canonical, internal_diversity, is_valid, load_nci_smiles, novelty,
                              qed_scores, sulfur_free, sulfur_free_scores, tokenize, uniqueness, validity)
from rlgen_utils.chem.smiles import nci_path
from rlgen_utils.sequences.masks import through_end


def raw_nci():
    with open(nci_path()) as f:
        return [line.split()[0] for line in f if line.strip()]


def test_nci_loads_offline_and_canonical():
    raw = raw_nci()
    assert len(raw) == 4999
    smiles = load_nci_smiles()
    assert 4000 < len(smiles) <= len(raw) and len(set(smiles)) == len(smiles)
    assert all("." not in s and Chem.MolToSmiles(Chem.MolFromSmiles(s)) == s for s in smiles[:300])
    short = load_nci_smiles(max_tokens=20)
    assert short and all(len(tokenize(s)) <= 20 for s in short)


def test_missing_nci_file_gives_a_clear_error(monkeypatch):
    monkeypatch.setattr("rlgen_utils.chem.smiles.nci_path", lambda: "/nonexistent/first_5K.smi")
    with pytest.raises(FileNotFoundError, match="NCI"):
        load_nci_smiles()


def test_tokenizer_round_trips_every_nci_smiles_exactly():
    raw = raw_nci()
    for s in raw + load_nci_smiles():
        assert "".join(tokenize(s)) == s


def test_tokenizer_keeps_multi_character_tokens_whole():
    assert tokenize("BrCc1ccc(Cl)cc1") == ["Br", "C", "c", "1", "c", "c", "c", "(", "Cl", ")", "c", "c", "1"]
    assert tokenize("C[C@@H](N)C(=O)[O-]") == ["C", "[C@@H]", "(", "N", ")", "C", "(", "=", "O", ")", "[O-]"]
    assert tokenize("C%12CC%12") == ["C", "%12", "C", "C", "%12"]
    assert tokenize("c1cc[nH]c1") == ["c", "1", "c", "c", "[nH]", "c", "1"]
    with pytest.raises(ValueError):
        tokenize("C&C")


def test_vocabulary_encode_decode_round_trip():
    smiles = load_nci_smiles(max_tokens=40)
    vocab = SmilesVocabulary(smiles)
    assert vocab.itos[vocab.end] == "<end>" and len(set(vocab.itos)) == len(vocab)
    x = vocab.encode(smiles, 41)
    assert x.shape == (len(smiles), 41) and x.dtype == torch.long
    assert vocab.decode(x) == smiles
    # the scored positions are the tokens and their end token: length + 1 each
    assert through_end(x, vocab.end).sum(1).tolist() == [len(tokenize(s)) + 1 for s in smiles]
    with pytest.raises(ValueError):
        vocab.encode(["CCCC"], 4)


def test_validity_against_rdkit_on_hand_picked_molecules():
    assert is_valid("c1ccccc1") and is_valid("CCS") and is_valid("CCO")
    assert not is_valid("C1CC") and not is_valid("c1cccc1") and not is_valid("") and not is_valid("C(C")
    assert not is_valid("C(C)(C)(C)(C)C")  # pentavalent carbon: RDKit's sanitisation rejects it
    picks = ["c1ccccc1", "C1CC", "CCS", "CC(", "O=C=O"]
    assert validity(picks) == pytest.approx(np.mean([Chem.MolFromSmiles(s) is not None for s in picks]))
    assert validity(picks) == pytest.approx(3 / 5)


def test_canonicalisation_matches_rdkit():
    assert canonical("C1=CC=CC=C1") == canonical("c1ccccc1") == "c1ccccc1"
    assert canonical("OCC") == canonical("CCO") == Chem.MolToSmiles(Chem.MolFromSmiles("OCC"))
    assert canonical("C1CC") is None


def test_sulfur_against_rdkit_atoms():
    assert sulfur_free("CCS") is False and sulfur_free("c1ccsc1") is False and sulfur_free("CC[S+](C)C") is False
    assert sulfur_free("CCO") is True and sulfur_free("c1ccccc1") is True
    assert sulfur_free("CSC1CC") is None   # invalid: no verdict
    assert sulfur_free("C[Si](C)C") is True  # silicon is not sulphur
    picks = ["CCS", "CCO", "C1CC", "c1ccsc1", "C[Si](C)C"]
    expected = [0.0, 1.0, 0.0, 0.0, 1.0]   # REINVENT's no_sulphur: invalid scores 0
    assert sulfur_free_scores(picks).tolist() == expected
    for s in load_nci_smiles()[:400]:
        mol = Chem.MolFromSmiles(s)
        assert sulfur_free(s) == (not mol.HasSubstructMatch(Chem.MolFromSmarts("[#16]")))


def test_qed_against_rdkit():
    picks = ["CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1", "C1CC", "CCN(CC)CC"]
    q = qed_scores(picks)
    assert np.isnan(q[2])
    for s, v in zip(picks, q):
        if s != "C1CC":
            assert v == pytest.approx(QED.qed(Chem.MolFromSmiles(s)))
    assert 0 < q[0] < 1


def test_uniqueness_and_novelty_by_brute_force():
    rng = np.random.default_rng(0)
    pool = ["CCO", "OCC", "c1ccccc1", "C1=CC=CC=C1", "CCN", "C1CC", "CC(", "CCS", "O"]
    training = {"CCO", "O"}
    for _ in range(50):
        sample = list(rng.choice(pool, size=int(rng.integers(1, 12))))
        mols = [Chem.MolFromSmiles(s) for s in sample]
        can = [Chem.MolToSmiles(m) for m in mols if m is not None]
        distinct = []
        for c in can:  # brute force: keep a molecule unless an equal one came before
            if not any(c == d for d in distinct):
                distinct.append(c)
        assert uniqueness(sample) == pytest.approx(len(distinct) / len(can) if can else 0.0)
        fresh = [d for d in distinct if all(d != t for t in training)]
        assert novelty(sample, training) == pytest.approx(len(fresh) / len(distinct) if distinct else 0.0)
    assert uniqueness(["CCO", "OCC", "CCO"]) == pytest.approx(1 / 3)
    assert novelty(["CCO", "CCN"], {"CCO"}) == pytest.approx(0.5)


def test_internal_diversity_against_pairwise_tanimoto():
    picks = ["CCO", "c1ccccc1", "CCN", "CCO", "CC(=O)O", "C1CC"]
    distinct = sorted({Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in picks if Chem.MolFromSmiles(s)})
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in distinct]
    dists = [1 - DataStructs.TanimotoSimilarity(a, b) for a, b in itertools.combinations(fps, 2)]
    assert internal_diversity(picks) == pytest.approx(np.mean(dists))
    assert internal_diversity(["CCO", "OCC"]) == 0.0


def test_reinvent_with_sigma_zero_leaves_the_prior_exactly():
    """Notebook 4.5's control, as a test: with σ = 0 the augmented likelihood log P_U = log P_Prior + σ S is the Prior's
    own, so an Agent copied from the Prior has loss 0 and gradient 0 on any batch, and Adam steps leave it unchanged.
    The same step with σ > 0 moves it (so the check can fail), and so would one that let the Prior's weights train."""
    import copy

    from rlgen_utils.sequences.policy import SequencePolicy

    smiles = load_nci_smiles(max_tokens=20)[:200]
    vocab = SmilesVocabulary(smiles)
    torch.manual_seed(0)
    prior = SequencePolicy(len(vocab), hidden=32, embed=16, cell="gru").requires_grad_(False)

    def log_likelihood(policy, tokens):
        return (policy.log_prob(tokens) * through_end(tokens, vocab.end).float()).sum(1)

    def steps(sigma, n_steps=3):
        agent = copy.deepcopy(prior).requires_grad_(True)
        opt = torch.optim.Adam(agent.parameters(), lr=1e-2)
        g = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(n_steps):
            tokens, _ = agent.sample(32, 21, generator=g)
            score = (tokens == vocab.stoi["C"]).float().mean(1)    # any S(A) in [0, 1]: here the share of carbons
            target = log_likelihood(prior, tokens) + sigma * score
            loss = ((target - log_likelihood(agent, tokens)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            losses.append(float(loss.detach()))
            assert sigma or all(p.grad.abs().max() == 0 for p in agent.parameters())
            opt.step()
        moved = max(float((a - b).detach().abs().max()) for a, b in zip(agent.parameters(), prior.parameters()))
        return losses, moved

    losses, moved = steps(0.0)
    assert losses == [0.0, 0.0, 0.0] and moved == 0.0
    losses, moved = steps(60.0)
    assert losses[0] > 0 and moved > 0
