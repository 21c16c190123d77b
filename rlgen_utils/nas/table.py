"""The precomputed table of every architecture of the §2.3 space, trained once with a short proxy budget (the
NAS-Bench idea), so a search over many seeds costs seconds. `python -m rlgen_utils.nas build-table` rebuilds
it; the table ships inside the package."""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from ..datasets.images import load_images
from .space import ACTIVATIONS, arch_name, arch_to_decisions, build_network, enumerate_space

TABLE_PATH = Path(__file__).resolve().parent / "nas_table.csv"  # ships inside the package


PROXY = dict(epochs=5, batch_size=64, lr=1e-2)  # the table's proxy training budget


def digits_splits(device=None) -> dict:
    """digits: 1,077 train / 360 validation (carved, stratified, from the 1,437 train) / 360 test."""

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
            writer.writerow([i, arch_name(arch), " ".join(map(str, arch_to_decisions(arch))), r["n_params"],
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
