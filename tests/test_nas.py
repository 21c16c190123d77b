"""rlgen_utils.nas against independent references: brute-force enumeration, a plain one-network
training loop, exact sums over a small space, and hand-built populations."""
import copy
import itertools
import math
import random
from collections import deque

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rlgen_utils.nas.search import (Controller, evolution_step, incumbent_curve, mutate_architecture, random_search,
    regularised_evolution, reinforce_search)
from rlgen_utils.nas.space import (CHOICES, DEPTHS, arch_to_decisions, build_network, decisions_to_arch,
    enumerate_space, used_slots)
from rlgen_utils.nas.table import digits_splits, init_network, load_table, load_trained, train_architectures


def test_space_is_enumerated_exactly_once_and_encoding_round_trips():
    space = enumerate_space()
    assert len(space) == sum(12 ** d for d in DEPTHS) == 1884
    assert len(set(space)) == len(space)
    for arch in space:
        assert decisions_to_arch(arch_to_decisions(arch)) == arch
    # every decision sequence (brute force over all 3·(4·3)³ of them) decodes into the space, and the
    # canonical sequences are exactly one per architecture
    decoded = {decisions_to_arch(d) for d in itertools.product(*map(range, CHOICES))}
    assert decoded == set(space)
    assert len({arch_to_decisions(a) for a in space}) == len(space)


def test_network_matches_its_decisions():
    acts = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
    for arch in random.Random(0).sample(enumerate_space(), 50):
        net = build_network(arch)
        linears = [m for m in net if isinstance(m, nn.Linear)]
        read_back = tuple((lin.out_features, acts[type(a)]) for lin, a in zip(linears[:-1], list(net)[1::2]))
        assert read_back == arch
        assert linears[0].in_features == 64 and linears[-1].out_features == 10
        assert net(torch.zeros(2, 64)).shape == (2, 10)


def test_bad_decisions_get_a_clear_error():
    with pytest.raises(ValueError, match="decision sequence"):
        decisions_to_arch([3, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="widths are"):
        arch_to_decisions([(48, "relu")])


def test_used_slots():
    d = torch.tensor([[0, 1, 2, 3, 1, 0, 0], [2, 0, 0, 0, 0, 0, 0]])
    assert used_slots(d).tolist() == [[True, True, True, False, False, False, False], [True] * 7]


def test_committed_table_covers_every_architecture():
    table = load_table()  # raises unless row i is architecture i, once each
    space = enumerate_space()
    assert len(table["arch"]) == len(space)
    assert [tuple(d) for d in table["decisions"]] == [arch_to_decisions(a) for a in space]
    for col in ("val_acc", "test_acc"):
        assert np.all((table[col] >= 0) & (table[col] <= 1))
    assert table["val_acc"].max() > 0.9  # the proxy trains: a broken trainer sits near 0.1
    assert [sum(p.numel() for p in build_network(a).parameters()) for a in space] == table["n_params"].tolist()


def test_batched_training_equals_training_each_network_alone():
    splits = digits_splits()
    archs = [((16, "relu"), (32, "tanh")), ((16, "sigmoid"), (32, "relu")), ((16, "tanh"), (32, "sigmoid"))]
    indices, seed, epochs, bs, lr = [5, 17, 40], 3, 1, 64, 1e-2
    batched = train_architectures(archs, splits, epochs=epochs, batch_size=bs, lr=lr, seed=seed, indices=indices)
    x, y = splits["train"]
    for arch, i, got in zip(archs, indices, batched):
        net = init_network(arch, seed, i)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        order = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=order).split(bs):
                loss = F.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        trained = load_trained(arch, got)
        for p, q in zip(net.parameters(), trained.parameters()):
            assert torch.allclose(p, q, atol=1e-4)
        with torch.no_grad():
            val = (net(splits["val"][0]).argmax(-1) == splits["val"][1]).float().mean().item()
        assert val == pytest.approx(got["val_acc"], abs=1 / 360 + 1e-9)


def test_controller_is_a_normalised_autoregressive_distribution():
    torch.manual_seed(0)
    controller = Controller(choices=(2, 3, 2), hidden=8)
    every = torch.tensor(list(itertools.product(range(2), range(3), range(2))))
    logp, ent = controller.logp_entropy(every)
    assert math.isclose(logp.sum(1).exp().sum().item(), 1.0, rel_tol=1e-5)
    # the first decision's entropy is the entropy of its marginal
    p0 = torch.stack([logp[every[:, 0] == v].sum(1).exp().sum() for v in range(2)])
    assert torch.allclose(ent[0, 0], -(p0 * p0.log()).sum(), atol=1e-5)
    samples = controller.sample(20000, generator=torch.Generator().manual_seed(0))
    freq = torch.tensor([(samples == s).all(1).float().mean() for s in every])
    assert torch.allclose(freq, logp.sum(1).exp(), atol=0.015)


def test_reinforce_converges_to_the_clearly_best_architecture_of_a_toy_table():
    space = enumerate_space()
    target = arch_to_decisions(((128, "tanh"), (64, "relu")))
    codes = np.array([arch_to_decisions(a) for a in space])
    reward = 0.3 * (codes == np.array(target)).mean(1)  # partial credit guides the search ...
    reward[space.index(decisions_to_arch(target))] = 1.0  # ... and one architecture is clearly best
    controller = Controller()
    reinforce_search(reward, budget=len(space), seed=0, batch_size=16, lr=0.1, max_updates=80, controller=controller)
    greedy = controller.sample(1, greedy=True)[0]
    assert decisions_to_arch(greedy.tolist()) == decisions_to_arch(target)
    logp, _ = controller.logp_entropy(torch.tensor([target]))
    used = used_slots(torch.tensor([target]))
    assert (logp * used).sum().exp().item() > 0.5


def test_reinforce_log_matches_the_exact_reward_and_entropy_of_an_untrained_controller():
    """With lr = 0 the controller never changes: the logged batch means average to the exact E_π[R] and
    H[π], summed over all 1,884 networks by enumeration."""
    space = enumerate_space()
    reward = np.random.default_rng(0).random(len(space))
    torch.manual_seed(3)
    controller = Controller()
    codes = torch.tensor([arch_to_decisions(a) for a in space])
    with torch.no_grad():
        logp, _ = controller.logp_entropy(codes)
    log_pi = (logp * used_slots(codes).float()).sum(1).double()
    assert math.isclose(log_pi.exp().sum().item(), 1.0, rel_tol=1e-5)
    exact_reward = float((log_pi.exp() * torch.as_tensor(reward)).sum())
    exact_entropy = float(-(log_pi.exp() * log_pi).sum())
    log = []
    reinforce_search(reward, budget=len(space), seed=0, batch_size=128, lr=0.0, max_updates=80,
                     controller=copy.deepcopy(controller), log=log)
    assert len(log) == 80 and log[-1]["evaluations"] <= len(space)
    assert np.mean([u["reward"] for u in log]) == pytest.approx(exact_reward, abs=0.015)
    assert np.mean([u["entropy"] for u in log]) == pytest.approx(exact_entropy, abs=0.08)  # 4 standard errors


def test_searchers_return_distinct_architectures_within_budget():
    reward = np.random.default_rng(0).random(len(enumerate_space()))
    for history in (random_search(len(reward), 50, seed=1), regularised_evolution(reward, 50, seed=1)):
        assert len(history) == 50 and len(set(history)) == 50
    history = reinforce_search(reward, 50, seed=1)  # may stop early if the controller stops exploring
    assert 0 < len(history) <= 50 and len(set(history)) == len(history)


def test_mutation_changes_one_decision_that_matters():
    rng = random.Random(0)
    for arch in random.Random(1).sample(enumerate_space(), 200):
        d = arch_to_decisions(arch)
        child = mutate_architecture(d, rng)
        assert child != d and arch_to_decisions(decisions_to_arch(child)) == child
        if child[0] == d[0]:  # same depth: exactly one slot differs
            assert sum(a != b for a, b in zip(child, d)) == 1


def test_mutation_that_keeps_the_depth_changes_one_other_decision():
    """keep_depth=True (the depth-restricted search of notebook 2.3): brute force over every architecture of
    each depth, the child keeps the depth, differs in exactly one used slot, and every used slot but the
    depth is reachable."""
    rng = random.Random(0)
    space = enumerate_space()
    for depth in DEPTHS:
        archs = [a for a in space if len(a) == depth]
        reached = set()
        for arch in archs * (3 if depth == 1 else 1):
            d = arch_to_decisions(arch)
            child = mutate_architecture(d, rng, keep_depth=True)
            assert child[0] == d[0] and arch_to_decisions(decisions_to_arch(child)) == child
            changed = [i for i, (a, b) in enumerate(zip(child, d)) if a != b]
            assert len(changed) == 1 and 1 <= changed[0] < 1 + 2 * depth
            reached.add(changed[0])
        assert reached == set(range(1, 1 + 2 * depth))


def test_regularised_evolution_restricted_to_one_depth():
    space = enumerate_space()
    reward = np.random.default_rng(0).random(len(space))
    for depth, budget in ((2, 40), (3, 120)):
        history = regularised_evolution(reward, budget, seed=2, depth=depth)
        assert len(history) == budget and len(set(history)) == budget
        assert all(len(space[i]) == depth for i in history)
    assert any(len(space[i]) != 3 for i in regularised_evolution(reward, 120, seed=2))  # unrestricted: depth changes


def test_regularised_evolution_ageing_removes_the_oldest_not_the_worst():
    space = enumerate_space()
    # the oldest member is the fittest; the newest is the least fit
    members = [(arch_to_decisions(space[i]), fit) for i, fit in zip([10, 200, 900, 1500], [0.99, 0.5, 0.4, 0.1])]
    population = deque(members)
    child = evolution_step(population, lambda d: 0.3, random.Random(0), sample_size=2)
    assert len(population) == 4
    assert members[0] not in population  # the oldest is gone although it was the best
    assert list(population)[:3] == members[1:] and population[-1] == (child, 0.3)


def test_incumbent_curve_by_brute_force():
    rng = np.random.default_rng(0)
    val, test = rng.integers(0, 5, 30) / 4, rng.random(30)  # ties in validation on purpose
    history = list(rng.permutation(30)[:12])
    curve = incumbent_curve(history, val, test, budget=15)
    for k in range(12):
        seen = history[: k + 1]
        best = max(seen, key=lambda i: (val[i], -seen.index(i)))  # first to reach the best validation
        assert curve[k] == test[best]
    assert np.all(curve[12:] == curve[11])
