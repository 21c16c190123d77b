"""Three searchers over the §2.3 table (notebook 2.3): a REINFORCE controller (Zoph & Le 2017), random
search and regularised evolution (Real et al. 2019), and the incumbent curve that compares them."""
from __future__ import annotations

import functools
import random
from collections import deque

import numpy as np
import torch
import torch.nn as nn

from ..rl.advantages import MovingAverageBaseline, masked_mean
from ..rl.policy_gradient import reinforce_loss
from ..runtime import sample_categorical
from .space import CHOICES, DEPTHS, SLOTS, arch_to_decisions, decisions_to_arch, enumerate_space, used_slots


class Controller(nn.Module):
    """Autoregressive policy over the decisions (Zoph & Le 2017): an LSTM cell reads the previous
    decision and a per-decision head gives π(d_t | d_<t) over that decision's own options."""

    def __init__(self, choices=CHOICES, hidden: int = 32):
        super().__init__()
        self.choices = tuple(choices)
        self.offsets = np.concatenate([[0], np.cumsum(self.choices)])
        self.embed = nn.Embedding(int(self.offsets[-1]) + 1, hidden)  # every (slot, option) + a start token
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in self.choices)

    def rollout(self, n: int, decisions: torch.Tensor | None = None, generator: torch.Generator | None = None,
                greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample `n` sequences (or score the given `decisions`) in one pass, decision by decision.

        Returns (decisions (n, T), log π(d_t | d_<t) (n, T), entropy of π(· | d_<t) (n, T)), with gradients.
        """
        device = self.heads[0].weight.device
        prev = torch.full((n,), int(self.offsets[-1]), device=device)  # the start token
        columns, logp, ent, state = [], [], [], None
        for t, head in enumerate(self.heads):
            state = self.cell(self.embed(prev), state)
            log_probs = torch.log_softmax(head(state[0]), -1)
            if decisions is not None:
                d = decisions[:, t]
            elif greedy:
                d = log_probs.argmax(-1)
            else:
                d = sample_categorical(log_probs.detach().exp(), generator)
            columns.append(d)
            logp.append(log_probs.gather(1, d[:, None])[:, 0])
            ent.append(-(log_probs.exp() * log_probs).sum(-1))
            prev = d + int(self.offsets[t])  # the next step reads this decision
        return torch.stack(columns, 1), torch.stack(logp, 1), torch.stack(ent, 1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, greedy: bool = False) -> torch.Tensor:
        """(n, T) decision sequences, each decision drawn given the ones before it."""
        return self.rollout(n, generator=generator, greedy=greedy)[0]

    def logp_entropy(self, decisions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log π(d_t | d_<t), entropy of π(· | d_<t)), each (n, T), for given sequences."""
        _, logp, ent = self.rollout(len(decisions), decisions)
        return logp, ent


def index_of_decisions(decisions: torch.Tensor) -> np.ndarray:
    """Table row of each (n, 7) decision sequence (unused slots are ignored)."""
    lookup = _rows()
    return np.array([lookup[arch_to_decisions(decisions_to_arch(d))] for d in decisions.tolist()])


@functools.lru_cache(maxsize=1)
def _rows() -> dict:
    return {arch_to_decisions(a): i for i, a in enumerate(enumerate_space())}


# Defined in notebooks/2.3_neural_architecture_search.ipynb, which explains it (tests/test_notebook_copies.py keeps the two identical).
def reinforce_search(reward: np.ndarray, budget: int, seed: int = 0, batch_size: int = 16, lr: float = 0.02,
                     entropy_coef: float = 0.05, baseline_decay: float = 0.8, max_updates: int | None = None,
                     controller: Controller | None = None, log: list | None = None) -> list[int]:
    """Zoph & Le (2017): sample a batch of architectures from the controller, reward R = validation
    accuracy, baseline b = moving average of R, ascend Σ_t ∇log π(d_t|d_<t)·(R − b) + β·∇H[π].

    Returns the distinct architectures evaluated (table rows), in order, until `budget` of them;
    stops early after `max_updates` (default 4·budget/batch_size) if the controller stops exploring.
    If `log` is a list, one dict per update is appended: the batch's mean reward R, the controller's
    entropy H[π] (Σ_t of the per-decision entropies along the samples) and the evaluations so far.
    """
    torch.manual_seed(seed)
    controller = controller if controller is not None else Controller()
    device = controller.heads[0].weight.device
    opt = torch.optim.Adam(controller.parameters(), lr=lr)
    baseline, gen = MovingAverageBaseline(baseline_decay), torch.Generator().manual_seed(seed)
    history, seen = [], set()
    max_updates = max_updates or 4 * budget // batch_size
    for _ in range(max_updates):
        decisions, logp, ent = controller.rollout(batch_size, generator=gen)  # one pass: sample and score
        rows = index_of_decisions(decisions.cpu())
        for i in rows:  # evaluate (train) the new ones; re-queries come from the cache
            if i not in seen and len(history) < budget:
                seen.add(int(i))
                history.append(int(i))
        keep = np.array([i in seen for i in rows])  # the last batch may be cut by the budget
        R = torch.as_tensor(reward[rows], dtype=torch.float32, device=device)
        b = baseline.update(R[torch.as_tensor(keep, device=device)])
        used = used_slots(decisions).float()
        keep_t = torch.as_tensor(keep, device=device, dtype=torch.float32)
        # log π(architecture) = Σ over the decisions that matter; the entropy bonus likewise
        loss = reinforce_loss((logp * used).sum(1), R - b, mask=keep_t)
        loss = loss - entropy_coef * masked_mean((ent * used).sum(1), keep_t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log is not None:
            log.append(dict(reward=float(R.mean()), entropy=float((ent.detach() * used).sum(1).mean()), evaluations=len(history)))
        if len(history) >= budget:
            break
    return history


def random_search(n_space: int, budget: int, seed: int = 0) -> list[int]:
    """Architectures drawn uniformly from the space, without repeats (a fresh draw of a known one is free)."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n_space)[:budget]]


def mutate_architecture(decisions: tuple, rng: random.Random, keep_depth: bool = False) -> tuple:
    """Real et al.'s mutation: change one decision that matters to a different option (a deeper
    network gets random new layers), returning the canonical sequence. `keep_depth=True` never picks
    the depth decision, so a search can stay inside one depth's sub-space."""
    d = list(decisions)
    depth = DEPTHS[d[0]]
    slot = rng.randrange(1, 1 + 2 * depth) if keep_depth else rng.randrange(1 + 2 * depth)
    d[slot] = rng.choice([v for v in range(CHOICES[slot]) if v != d[slot]])
    if slot == 0:
        for s in range(1 + 2 * depth, len(SLOTS)):
            d[s] = rng.randrange(CHOICES[s])
    return arch_to_decisions(decisions_to_arch(d))


# Defined in notebooks/2.3_neural_architecture_search.ipynb, which explains it (tests/test_notebook_copies.py keeps the two identical).
def evolution_step(population: deque, fitness, rng: random.Random, sample_size: int, keep_depth: bool = False) -> tuple:
    """One cycle of regularised evolution: tournament-select a parent from `sample_size` random
    members, add its mutated child, and remove the *oldest* member (ageing), not the worst."""
    candidates = rng.sample(list(population), sample_size)
    parent = max(candidates, key=lambda m: m[1])
    child = mutate_architecture(parent[0], rng, keep_depth)
    population.append((child, fitness(child)))
    population.popleft()
    return child


def regularised_evolution(reward: np.ndarray, budget: int, seed: int = 0, population_size: int = 20,
                          sample_size: int = 5, depth: int | None = None) -> list[int]:
    """Real et al. (2019), Algorithm 1, on the table: a random initial population, then evolution
    cycles until `budget` distinct architectures have been evaluated. With `depth`, the search stays
    in that depth's sub-space: the initial population has that depth and mutations keep it."""
    rng = random.Random(seed)
    space, row = enumerate_space(), _rows()
    pool = range(len(space)) if depth is None else [i for i, a in enumerate(space) if len(a) == depth]
    history, seen = [], set()

    def fitness(decisions):
        i = row[decisions]
        if i not in seen:
            seen.add(i)
            history.append(i)
        return float(reward[i])

    population = deque((arch_to_decisions(space[i]), 0.0) for i in rng.sample(pool, population_size))
    population = deque((d, fitness(d)) for d, _ in population)
    for _ in range(50 * budget):
        if len(history) >= budget:
            break
        evolution_step(population, fitness, rng, sample_size, keep_depth=depth is not None)
    return history[:budget]


def incumbent_curve(history, val_acc: np.ndarray, test_acc: np.ndarray, budget: int) -> np.ndarray:
    """Test accuracy of the best-by-validation architecture after each evaluation (1..budget); a
    search that stopped early keeps its last incumbent."""
    val, test = np.asarray(val_acc)[history], np.asarray(test_acc)[history]
    best = np.maximum.accumulate(val)
    # the first architecture reaching each running maximum is the incumbent
    pos = np.array([int(np.flatnonzero(val[: k + 1] == best[k])[0]) for k in range(len(val))])
    curve = test[pos]
    return np.concatenate([curve, np.full(budget - len(curve), curve[-1])])
