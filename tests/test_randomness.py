"""The randomness convention (rlgen_utils/runtime.py, docs/architecture.md): random draws made with a
generator happen on the CPU and move to the tensors' device, so a CPU generator never meets a CUDA kernel.

The bug this guards against ("Expected a 'cuda' device type for generator but found 'cpu'") only shows on
a GPU, so it is caught here without one by reading the code: every call in the library and in the
notebooks' code cells that passes `generator=` must be one that is device-safe by construction.
What it cannot see: a generator handed to third-party code that samples with it, an op reached through an
alias (`from torch import multinomial as m`), or a CUDA generator made elsewhere and passed in.
"""
import ast
import json
from pathlib import Path

import pytest
import torch

from rlgen_utils.runtime import sample_categorical

ROOT = Path(__file__).resolve().parent.parent
# Ops whose draw happens on the device of a tensor argument (or of `self`): a CPU generator fails on CUDA.
TENSOR_DEVICE_SAMPLERS = {"multinomial", "bernoulli", "normal", "poisson", "binomial", "random_", "uniform_",
                          "normal_", "exponential_", "bernoulli_", "geometric_", "cauchy_", "log_normal_"}
# Ops that create a tensor on the CPU unless given `device=`: with a generator they must not get one.
CREATION_SAMPLERS = {"rand", "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like"}
ALLOWED = {("rlgen_utils/runtime.py", "sample_categorical")}  # the one place that moves the draw itself


def sources():
    """(label, python source) for every library module and every notebook's code, cell by cell."""
    for path in sorted((ROOT / "rlgen_utils").rglob("*.py")):
        yield str(path.relative_to(ROOT)), path.read_text()
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                code = "".join(cell["source"])
                code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())
                yield f"{path.relative_to(ROOT)} cell {i}", code


def violations(label: str, code: str) -> list[str]:
    found = []

    class Visitor(ast.NodeVisitor):
        def __init__(self):
            self.function = None

        def visit_FunctionDef(self, node):
            outer, self.function = self.function, node.name
            self.generic_visit(node)
            self.function = outer

        def visit_Call(self, node):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            keywords = {k.arg for k in node.keywords}
            where = f"{label}:{node.lineno}"
            if isinstance(node.func, ast.Attribute) and name == "Generator" and (node.args or keywords):
                found.append(f"{where}: torch.Generator(...) with a device: the book's generators are CPU ones")
            if "generator" in keywords and (label.split(" ")[0], self.function) not in ALLOWED:
                if name in TENSOR_DEVICE_SAMPLERS:
                    found.append(f"{where}: {name}(..., generator=...) draws on its tensor's device: "
                                 "use runtime.sample_categorical, or draw on the CPU and move the result")
                device = next((k.value for k in node.keywords if k.arg == "device"), None)
                if name in CREATION_SAMPLERS and device is not None and not (
                        isinstance(device, ast.Constant) and device.value == "cpu"):
                    found.append(f"{where}: {name}(..., generator=..., device=...) draws on that device: "
                                 "drop device= and move the draw with .to(device)")
            self.generic_visit(node)

    Visitor().visit(ast.parse(code))
    return found


def test_every_draw_with_a_generator_is_device_safe():
    problems = [v for label, code in sources() for v in violations(label, code)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("bad", [
    "torch.multinomial(probs, 1, generator=g)",
    "probs.multinomial(1, generator=g)",
    "torch.randn(3, generator=g, device=x.device)",
    "x.uniform_(generator=g)",
    "torch.Generator(device='cuda')",
])
def test_the_guard_flags_each_unsafe_pattern(bad):
    assert violations("example.py", bad), bad


@pytest.mark.parametrize("good", [
    "torch.randn(3, generator=g).to(device)",
    "torch.randint(10, (4,), generator=g, device='cpu')",
    "sample_categorical(probs, g)",
    "torch.multinomial(probs, 1)",
    "torch.Generator().manual_seed(0)",
])
def test_the_guard_accepts_the_convention(good):
    assert not violations("example.py", good), good


def test_sample_categorical_equals_multinomial_on_the_cpu():
    probs = torch.softmax(torch.randn(64, 7, generator=torch.Generator().manual_seed(1)), -1)
    expected = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(2)).squeeze(-1)
    got = sample_categorical(probs, torch.Generator().manual_seed(2))
    assert torch.equal(got, expected) and got.shape == (64,)
    assert sample_categorical(probs[0], torch.Generator().manual_seed(3)).shape == ()


def test_sample_categorical_frequencies_match_the_probabilities():
    probs = torch.tensor([0.1, 0.2, 0.7])
    draws = sample_categorical(probs.expand(20_000, 3), torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=3).float() / len(draws)
    assert torch.allclose(freq, probs, atol=0.015)  # 4.5 binomial s.e. at n = 20,000


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the GPU run checks it)")
def test_sample_categorical_is_the_same_on_cuda():
    probs = torch.softmax(torch.randn(32, 5, generator=torch.Generator().manual_seed(1)), -1)
    cpu = sample_categorical(probs, torch.Generator().manual_seed(4))
    cuda = sample_categorical(probs.cuda(), torch.Generator().manual_seed(4))
    assert cuda.device.type == "cuda" and torch.equal(cuda.cpu(), cpu)
