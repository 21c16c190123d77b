"""requirements.lock pins every dependency of every extra, with hashes, in versions pyproject admits; the Makefile,
.ci/run (through make), Binder's environment.yml and the notebooks' setup cell all install through it."""
import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
HERE = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux", "platform_system": "Linux",
        "platform_machine": "x86_64", "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "os_name": "posix", "extra": ""}


def locked() -> dict[str, list[tuple[str, str | None, list[str]]]]:
    """{name: [(version, marker, hashes)]} from the lock (a universal lock may pin a name once per platform)."""
    pins: dict = {}
    for block in re.split(r"\n(?=\S)", LOCK.read_text()):
        m = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\", block)
        if m:
            pins.setdefault(canonicalize_name(m.group(1)), []).append(
                (m.group(2), m.group(3), re.findall(r"--hash=sha256:([0-9a-f]{64})", block)))
    return pins


def declared() -> list[Requirement]:
    extras = [r for group in PROJECT["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in PROJECT["dependencies"] + extras]


def test_every_declared_dependency_is_locked_in_a_version_pyproject_admits():
    pins = locked()
    assert len(pins) > 50, "the lock looks empty: run `make lock`"
    for req in declared():
        name = canonicalize_name(req.name)
        if name == "torch":
            assert name not in pins  # installed first, from PyTorch's CPU index, by the Makefile
            continue
        assert name in pins, f"{req} is declared in pyproject but not in requirements.lock: run `make lock`"
        for version, marker, hashes in pins[name]:
            if marker is None or Marker(marker).evaluate(HERE):
                assert req.specifier.contains(version, prereleases=True), (
                    f"requirements.lock pins {req.name}=={version}, outside pyproject's {req}: run `make lock`")
                assert hashes, f"{req.name}=={version} has no hash in requirements.lock"


def test_every_lock_entry_has_hashes():
    assert all(hashes for entries in locked().values() for _, _, hashes in entries)


def test_every_install_path_goes_through_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "-c $(LOCK)" in makefile and "LOCK    := requirements.lock" in makefile
    assert makefile.index('"$(TORCH)"') < makefile.index("$(INSTALL) -r")  # torch first, then the locked rest
    assert "-c requirements.lock" in (ROOT / "postBuild").read_text()  # Binder
    from rlgen_utils.book.setup_cell import setup_cell_source

    assert "requirements.lock" in setup_cell_source()
    assert "make test" in (ROOT / ".ci" / "run").read_text()
