"""Every way in installs PyTorch's CPU build first, pinned to the version the Makefile pins, then the package through
requirements.lock: the Makefile (and CI through it) and Binder's postBuild."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_torch_range_admits_the_pinned_cpu_build_and_every_install_puts_it_first():
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = Requirement(next(d for d in project["dependencies"] if d.startswith("torch")))
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"TORCH\s+\?= torch==([\d.]+)", makefile).group(1)
    assert torch_req.specifier.contains(pinned)
    assert "TORCH_INDEX ?= https://download.pytorch.org/whl/cpu" in makefile
    post = (ROOT / "postBuild").read_text()
    assert f'"torch=={pinned}"' in post and "download.pytorch.org/whl/cpu" in post
    assert post.index("torch==") < post.index("-c requirements.lock")
    assert "python=3.11" in (ROOT / "environment.yml").read_text()
