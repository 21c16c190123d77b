"""The search space of survey §2.3 (notebook 2.3): an MLP for the digits as a sequence of decisions
[depth, width₁, act₁, width₂, act₂, width₃, act₃]; layers beyond `depth` are unused (their slots are 0 in
the canonical form). 1,884 architectures."""
from __future__ import annotations

import itertools

import torch
import torch.nn as nn

DEPTHS = (1, 2, 3)


WIDTHS = (16, 32, 64, 128)


ACTIVATIONS = ("relu", "tanh", "sigmoid")


SLOTS = ("depth", "width1", "act1", "width2", "act2", "width3", "act3")


CHOICES = (len(DEPTHS),) + (len(WIDTHS), len(ACTIVATIONS)) * max(DEPTHS)  # options per decision


ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def decisions_to_arch(decisions) -> tuple:
    """Decision sequence → architecture, a tuple of (width, activation) per hidden layer."""
    d = [int(v) for v in decisions]
    if len(d) != len(SLOTS) or any(not 0 <= v < k for v, k in zip(d, CHOICES)):
        raise ValueError(f"a decision sequence is {len(SLOTS)} ints with d[i] in range(CHOICES[i]) = {CHOICES}; got {d}")
    depth = DEPTHS[d[0]]
    return tuple((WIDTHS[d[1 + 2 * i]], ACTIVATIONS[d[2 + 2 * i]]) for i in range(depth))


def arch_to_decisions(arch) -> tuple:
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
