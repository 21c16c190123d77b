"""Neural architecture search on the digits classifier (survey §2.3): a small enumerable space, a
precomputed table of every architecture (the NAS-Bench idea), and three searchers that query it.

- Search space: an MLP is a sequence of decisions [depth, width₁, act₁, width₂, act₂, width₃, act₃];
  layers beyond `depth` are unused (their slots are 0 in the canonical encoding). 1,884 architectures.
- Model evaluation: `train_architectures` trains many architectures at once (those sharing their
  widths are stacked and trained with one batched matmul; Adam is elementwise, so this equals training
  each on its own), a short proxy budget; `python -m rlgen_utils.nas build-table` writes data/nas_table.csv.
- Optimisation: a REINFORCE controller (Zoph & Le 2017), random search, regularised evolution with
  ageing (Real et al. 2019). Each returns the distinct architectures it evaluated, in order; a query of
  an architecture already evaluated is served from a cache and costs nothing.
"""
from __future__ import annotations

import argparse
import csv
import functools
import itertools
import random
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .runtime import sample_categorical
from .trainers import MovingAverageBaseline, masked_mean, reinforce_loss

# ----------------------------------------------------------------------------- the search space
DEPTHS = (1, 2, 3)
WIDTHS = (16, 32, 64, 128)
ACTIVATIONS = ("relu", "tanh", "sigmoid")
SLOTS = ("depth", "width1", "act1", "width2", "act2", "width3", "act3")
CHOICES = (len(DEPTHS),) + (len(WIDTHS), len(ACTIVATIONS)) * max(DEPTHS)  # options per decision
ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
TABLE_PATH = Path(__file__).resolve().parent.parent / "data" / "nas_table.csv"
PROXY = dict(epochs=5, batch_size=64, lr=1e-2)  # the table's proxy training budget


def decode(decisions) -> tuple:
    """Decision sequence → architecture, a tuple of (width, activation) per hidden layer."""
    d = [int(v) for v in decisions]
    if len(d) != len(SLOTS) or any(not 0 <= v < k for v, k in zip(d, CHOICES)):
        raise ValueError(f"a decision sequence is {len(SLOTS)} ints with d[i] in range(CHOICES[i]) = {CHOICES}; got {d}")
    depth = DEPTHS[d[0]]
    return tuple((WIDTHS[d[1 + 2 * i]], ACTIVATIONS[d[2 + 2 * i]]) for i in range(depth))


def encode(arch) -> tuple:
    """Architecture → its canonical decision sequence (unused layers' slots are 0)."""
    arch = tuple(tuple(layer) for layer in arch)
    if len(arch) not in DEPTHS:
        raise ValueError(f"an architecture has {DEPTHS} hidden layers, got {len(arch)}: {arch}")
    d = [DEPTHS.index(len(arch))] + [0] * (len(SLOTS) - 1)
    for i, (width, act) in enumerate(arch):
        if width not in WIDTHS or act not in ACTIVATIONS:
            raise ValueError(f"layer {i + 1} is {(width, act)}: widths are {WIDTHS}, activations {ACTIVATIONS}")
        d[1 + 2 * i], d[2 + 2 * i] = WIDTHS.index(width), ACTIVATIONS.index(act)
    return tuple(d)


def used_slots(decisions: torch.Tensor) -> torch.Tensor:
    """(n, 7) bool: which decisions matter (the depth, then two per layer actually built)."""
    depth = torch.as_tensor(DEPTHS, device=decisions.device)[decisions[:, 0]]
    return torch.arange(len(SLOTS), device=decisions.device)[None] < 1 + 2 * depth[:, None]


def enumerate_space() -> list[tuple]:
    """Every architecture once, in table order (by depth, then layer by layer)."""
    layers = list(itertools.product(WIDTHS, ACTIVATIONS))
    return [arch for depth in DEPTHS for arch in itertools.product(layers, repeat=depth)]


def arch_name(arch) -> str:
    return "-".join(f"{w}{a}" for w, a in arch)


def build_network(arch, n_in: int = 64, n_out: int = 10) -> nn.Sequential:
    """The torch network an architecture describes: [Linear → activation] per layer, then a Linear head."""
    modules, width_in = [], n_in
    for width, act in arch:
        modules += [nn.Linear(width_in, width), ACTIVATION_MODULES[act]()]
        width_in = width
    return nn.Sequential(*modules, nn.Linear(width_in, n_out))


# ----------------------------------------------------------------------------- model evaluation
def digits_splits(device=None) -> dict:
    """digits: 1,077 train / 360 validation (carved, stratified, from the 1,437 train) / 360 test."""
    from sklearn.model_selection import train_test_split

    from .data import load_images

    data = load_images("digits")
    x_tr, x_va, y_tr, y_va = train_test_split(data.x_train, data.y_train, test_size=360, random_state=0,
                                              stratify=data.y_train)
    parts = dict(train=(x_tr, y_tr), val=(x_va, y_va), test=(data.x_test, data.y_test))
    return {k: (torch.as_tensor(x, device=device), torch.as_tensor(y, device=device).long()) for k, (x, y) in parts.items()}


def init_network(arch, seed: int, index: int) -> nn.Sequential:
    """`build_network(arch)` with PyTorch's default init drawn from a seed of its own (order-independent)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 1_000_003 + index)
        return build_network(arch)


def _stacked_forward(x, weights, biases, act_codes):
    """Forward K same-width networks at once: weights[l] is (K, in, out); act_codes[l] is (K, 1, 1)."""
    h = x
    for l, (w, b) in enumerate(zip(weights, biases)):
        h = torch.matmul(h, w) + b
        if l < len(act_codes):
            code = act_codes[l]
            h = torch.where(code == 0, torch.relu(h), torch.where(code == 1, torch.tanh(h), torch.sigmoid(h)))
    return h


def train_architectures(archs, splits: dict, epochs: int = PROXY["epochs"], batch_size: int = PROXY["batch_size"],
                        lr: float = PROXY["lr"], seed: int = 0, indices=None, progress: bool = False) -> list[dict]:
    """Train each architecture with Adam on mini-batches for `epochs`; score it on validation and test.

    Architectures with the same widths are stacked into one batched network (the loss is the sum of
    the members' losses, so each member gets exactly its own gradients and Adam steps). Initial
    weights come from `init_network(arch, seed, index)`; the mini-batch order from `seed` (the same
    for all: common random numbers). Returns one dict per architecture, in the order given.
    """
    indices = list(range(len(archs))) if indices is None else list(indices)
    x_tr, y_tr = splits["train"]
    device = x_tr.device
    groups: dict[tuple, list[int]] = {}
    for j, arch in enumerate(archs):
        groups.setdefault(tuple(w for w, _ in arch), []).append(j)
    results: list[dict | None] = [None] * len(archs)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(archs), desc="training architectures")
    for members in groups.values():
        start = time.perf_counter()
        nets = [init_network(archs[j], seed, indices[j]) for j in members]
        linears = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        weights = [torch.stack([lin[l].weight.detach().T for lin in linears]).to(device).requires_grad_()
                   for l in range(len(linears[0]))]
        biases = [torch.stack([lin[l].bias.detach()[None] for lin in linears]).to(device).requires_grad_()
                  for l in range(len(linears[0]))]
        act_codes = [torch.tensor([ACTIVATIONS.index(archs[j][l][1]) for j in members], device=device).view(-1, 1, 1)
                     for l in range(len(archs[members[0]]))]
        opt = torch.optim.Adam(weights + biases, lr=lr)
        order = torch.Generator().manual_seed(seed)
        k = len(members)
        for _ in range(epochs):
            for idx in torch.randperm(len(x_tr), generator=order).split(batch_size):
                logits = _stacked_forward(x_tr[idx.to(device)], weights, biases, act_codes)
                # sum over members of each member's mean cross-entropy
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y_tr[idx.to(device)].repeat(k)) * k
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            acc = {name: (_stacked_forward(splits[name][0], weights, biases, act_codes).argmax(-1)
                          == splits[name][1]).float().mean(-1).cpu() for name in ("val", "test")}
        seconds = (time.perf_counter() - start) / k
        for m, j in enumerate(members):
            results[j] = dict(val_acc=float(acc["val"][m]), test_acc=float(acc["test"][m]),
                              n_params=sum(p.numel() for p in nets[m].parameters()), train_seconds=seconds,
                              weights=[w[m].detach().T.cpu() for w in weights], biases=[b[m, 0].detach().cpu() for b in biases])
        if bar is not None:
            bar.update(k)
    if bar is not None:
        bar.close()
    return results


def load_trained(arch, result: dict) -> nn.Sequential:
    """The trained network of one `train_architectures` result, as a plain `build_network(arch)`."""
    net = build_network(arch)
    for lin, w, b in zip([m for m in net if isinstance(m, nn.Linear)], result["weights"], result["biases"]):
        lin.weight.data.copy_(w)
        lin.bias.data.copy_(b)
    return net


TABLE_COLUMNS = ("index", "arch", "decisions", "n_params", "val_acc", "test_acc", "train_seconds")


def _train_chunk(args):
    archs, indices, seed = args
    rows = train_architectures(archs, digits_splits(), seed=seed, indices=indices)
    return [{k: r[k] for k in ("val_acc", "test_acc", "n_params", "train_seconds")} for r in rows]


def build_table(out: str | Path = TABLE_PATH, jobs: int = 1, seed: int = 0, progress: bool = True) -> float:
    """Train every architecture once with the proxy budget and write the table; returns wall seconds."""
    start = time.perf_counter()
    space = enumerate_space()
    # chunks of whole width-groups (enumeration order keeps each group's members together per depth)
    by_widths: dict[tuple, list[int]] = {}
    for i, arch in enumerate(space):
        by_widths.setdefault(tuple(w for w, _ in arch), []).append(i)
    chunks = [(list(map(space.__getitem__, ids)), ids, seed) for ids in by_widths.values()]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(jobs) as pool:
            parts = list(pool.map(_train_chunk, chunks))
    else:
        parts = []
        for c in chunks:
            parts.append(_train_chunk(c))
            if progress:
                print(f"\r{sum(map(len, parts))}/{len(space)} architectures", end="", file=sys.stderr)
    rows = {}
    for (_, ids, _), part in zip(chunks, parts):
        rows.update(zip(ids, part))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        for i, arch in enumerate(space):
            r = rows[i]
            writer.writerow([i, arch_name(arch), " ".join(map(str, encode(arch))), r["n_params"],
                             f"{r['val_acc']:.6f}", f"{r['test_acc']:.6f}", f"{r['train_seconds']:.5f}"])
    return time.perf_counter() - start


def load_table(path: str | Path | None = None) -> dict:
    """The table as numpy columns (row i is architecture i of `enumerate_space()`), checked for coverage."""
    path = Path(path) if path is not None else TABLE_PATH
    if not path.exists():
        raise FileNotFoundError(f"no NAS table at {path}: build it with `python -m rlgen_utils.nas build-table --out {path}`")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    space = enumerate_space()
    if [r["arch"] for r in rows] != [arch_name(a) for a in space]:
        raise ValueError(f"{path} does not list every architecture of the space once, in order: rebuild it with "
                         "`python -m rlgen_utils.nas build-table`")
    table = {"arch": [r["arch"] for r in rows],
             "decisions": np.array([[int(v) for v in r["decisions"].split()] for r in rows])}
    for col, kind in (("index", int), ("n_params", int), ("val_acc", float), ("test_acc", float), ("train_seconds", float)):
        table[col] = np.array([kind(r[col]) for r in rows])
    return table


# ----------------------------------------------------------------------------- the RL controller
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

    def evaluate(self, decisions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log π(d_t | d_<t), entropy of π(· | d_<t)), each (n, T), for given sequences."""
        _, logp, ent = self.rollout(len(decisions), decisions)
        return logp, ent


# ----------------------------------------------------------------------------- searchers
def index_of_decisions(decisions: torch.Tensor) -> np.ndarray:
    """Table row of each (n, 7) decision sequence (unused slots are ignored)."""
    lookup = _rows()
    return np.array([lookup[encode(decode(d))] for d in decisions.tolist()])


@functools.lru_cache(maxsize=1)
def _rows() -> dict:
    return {encode(a): i for i, a in enumerate(enumerate_space())}


def reinforce_search(reward: np.ndarray, budget: int, seed: int = 0, batch_size: int = 16, lr: float = 0.02,
                     entropy_coef: float = 0.05, baseline_decay: float = 0.8, max_updates: int | None = None,
                     controller: Controller | None = None) -> list[int]:
    """Zoph & Le (2017): sample a batch of architectures from the controller, reward R = validation
    accuracy, baseline b = moving average of R, ascend Σ_t ∇log π(d_t|d_<t)·(R − b) + β·∇H[π].

    Returns the distinct architectures evaluated (table rows), in order, until `budget` of them;
    stops early after `max_updates` (default 4·budget/batch_size) if the controller stops exploring.
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
        if len(history) >= budget:
            break
    return history


def random_search(n_space: int, budget: int, seed: int = 0) -> list[int]:
    """Architectures drawn uniformly from the space, without repeats (a fresh draw of a known one is free)."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n_space)[:budget]]


def mutate(decisions: tuple, rng: random.Random) -> tuple:
    """Real et al.'s mutation: change one decision that matters to a different option (a deeper
    network gets random new layers), returning the canonical sequence."""
    d = list(decisions)
    depth = DEPTHS[d[0]]
    slot = rng.randrange(1 + 2 * depth)
    d[slot] = rng.choice([v for v in range(CHOICES[slot]) if v != d[slot]])
    if slot == 0:
        for s in range(1 + 2 * depth, len(SLOTS)):
            d[s] = rng.randrange(CHOICES[s])
    return encode(decode(d))


def evolution_step(population: deque, fitness, rng: random.Random, sample_size: int) -> tuple:
    """One cycle of regularised evolution: tournament-select a parent from `sample_size` random
    members, add its mutated child, and remove the *oldest* member (ageing), not the worst."""
    candidates = rng.sample(list(population), sample_size)
    parent = max(candidates, key=lambda m: m[1])
    child = mutate(parent[0], rng)
    population.append((child, fitness(child)))
    population.popleft()
    return child


def regularised_evolution(reward: np.ndarray, budget: int, seed: int = 0, population_size: int = 20,
                          sample_size: int = 5) -> list[int]:
    """Real et al. (2019), Algorithm 1, on the table: a random initial population, then evolution
    cycles until `budget` distinct architectures have been evaluated."""
    rng = random.Random(seed)
    space, row = enumerate_space(), _rows()
    history, seen = [], set()

    def fitness(decisions):
        i = row[decisions]
        if i not in seen:
            seen.add(i)
            history.append(i)
        return float(reward[i])

    population = deque((encode(space[i]), 0.0) for i in rng.sample(range(len(space)), population_size))
    population = deque((d, fitness(d)) for d, _ in population)
    for _ in range(50 * budget):
        if len(history) >= budget:
            break
        evolution_step(population, fitness, rng, sample_size)
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


# ----------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlgen_utils.nas", description="NAS on digits (survey §2.3): build the table of every architecture.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build-table", help="train every architecture once (proxy budget) and write the table")
    b.add_argument("--out", default=str(TABLE_PATH))
    b.add_argument("--jobs", type=int, default=1, help="worker processes")
    b.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "build-table":
        seconds = build_table(args.out, jobs=args.jobs, seed=args.seed)
        print(f"\nwrote {args.out}: {len(enumerate_space())} architectures in {seconds:.0f} s "
              f"(proxy: {PROXY}, jobs={args.jobs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
