# rlgen: `make run` executes the book, `make test` runs the test suite, `make lab` opens JupyterLab, `make book` builds
# the website. Each sets itself up first: a virtual environment in .venv with PyTorch's CPU build, then the package
# with the extras that target needs, every version pinned by requirements.lock (hashes checked), and a Jupyter kernel.
PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= full
ONLY    ?=
RESUME  ?=
JOBS    ?= 1
OUT     ?= build
SEEDS   ?=
ENGINE  ?= local
ADDRESS ?=
TORCH   ?= torch==2.13.0
# PyTorch's CPU wheels. Without this index pip takes the CUDA build from PyPI (several GB); leave it empty where the
# CPU build is already on disk or a local index serves it (`make TORCH_INDEX= test`).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP     ?= pip==26.3
LOCK    := requirements.lock

BIN := $(VENV)/bin
INSTALL := $(BIN)/python -m pip install --quiet -c $(LOCK)
# The venv's bin/ first on PATH, so papermill's "python3" kernel is the project's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup run test unit lab book lock test-latest clean

setup: $(VENV)/.installed-run

# The interpreter, pip and torch, once: torch first, pinned and alone (--no-deps: its own dependencies come from the
# lock below), so nothing later pulls a CUDA build.
$(VENV)/.torch:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(PIP)"
	$(BIN)/python -m pip install --quiet --no-deps $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH)"
	@touch $@

# pyproject's requirements (the base, plus the extras named) as a requirements file: installed through the lock,
# with hashes, and the package itself without dependencies (an editable install has no single file to hash).
REQUIREMENTS = $(BIN)/python -c 'import sys, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
  print("\n".join(p["dependencies"] + [r for e in sys.argv[1:] for r in p["optional-dependencies"][e]]))'

# What the notebooks need (the package and its dependencies), and the "Python (rlgen)" kernel.
$(VENV)/.installed-run: pyproject.toml $(LOCK) $(VENV)/.torch
	$(REQUIREMENTS) > $(VENV)/requirements-run.txt
	$(INSTALL) -r $(VENV)/requirements-run.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name rlgen --display-name "Python (rlgen)" >/dev/null
	@touch $@

# One extra on top: test, book, lab or cluster (pyproject's optional-dependencies).
$(VENV)/.installed-%: pyproject.toml $(LOCK) $(VENV)/.installed-run
	$(REQUIREMENTS) $* > $(VENV)/requirements-$*.txt
	$(INSTALL) -r $(VENV)/requirements-$*.txt
	@touch $@

run: $(VENV)/.installed-run $(if $(filter ray,$(ENGINE)),$(VENV)/.installed-cluster)
	$(BIN)/python -m rlgen_utils run --profile $(PROFILE) --jobs $(JOBS) --out $(OUT) $(if $(ONLY),--only "$(ONLY)") \
	  $(if $(RESUME),--resume) $(if $(SEEDS),--seeds $(SEEDS) --engine $(ENGINE)) $(if $(ADDRESS),--address $(ADDRESS))

# Every test, each notebook executed once (alone, from a freshly built wheel, in `smoke`) with its bands and its
# checked outputs, the Ray engine on an embedded local Ray, and the website built and opened in headless Chromium. Two workers with one OpenMP thread each
# fill two cores without oversubscribing them.
test: $(VENV)/.installed-test $(VENV)/.installed-book $(VENV)/.installed-cluster
	RLGEN_PROFILE=smoke OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -p no:cacheprovider tests

# The unit tests alone: no wheel, no notebook, no website (under a minute once installed). The same extras as `test`:
# the unit tests include the engines' (Ray) and the browser check's clear errors, and the declared-imports test
# needs every imported distribution installed.
unit: $(VENV)/.installed-test $(VENV)/.installed-book $(VENV)/.installed-cluster
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -p no:cacheprovider -m "not notebook and not site" tests

# The website from the committed notebooks (Sphinx + MyST-NB, no execution) into $(OUT)/site, then every page
# checked in headless Chromium (Debian's chromium; without it the site is built and a warning says so).
book: $(VENV)/.installed-book
	$(BIN)/python -m rlgen_utils book --out $(OUT)/site

# Extra flags for JupyterLab, e.g. LABFLAGS=--no-browser; root (a container) needs --allow-root.
LABFLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)
lab: $(VENV)/.installed-lab
	cd notebooks && $(CURDIR)/$(BIN)/jupyter lab --MultiKernelManager.default_kernel_name=rlgen $(LABFLAGS)

# Re-pin every dependency (all extras, every platform, Python >= 3.11) with hashes, resolved against PyTorch's CPU
# build (so no CUDA packages); torch itself stays out (installed first, above). LOCKFLAGS adds uv options, e.g.
# `LOCKFLAGS="--find-links /opt/wheels"` where the CPU build lies on disk. tests/test_lock.py checks the result.
UV ?= uv==0.13.9
LOCKFLAGS ?=
lock: $(VENV)/.torch
	$(BIN)/python -m pip install --quiet "$(UV)"
	echo "$(TORCH)+cpu" > $(VENV)/torch-cpu.txt
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 --generate-hashes --quiet \
	  --override $(VENV)/torch-cpu.txt --no-emit-package torch --index-strategy unsafe-best-match \
	  $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) $(LOCKFLAGS) -o $(LOCK)

# Drift shows here first: the newest release of every dependency (no lock) in .venv-latest, then the smoke suite.
test-latest:
	@test -x .venv-latest/bin/python || $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/python -m pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH)"
	.venv-latest/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[test,book]"
	.venv-latest/bin/python -m ipykernel install --sys-prefix --name rlgen --display-name "Python (rlgen, latest)" >/dev/null
	RLGEN_PROFILE=smoke OMP_NUM_THREADS=1 PATH=$(CURDIR)/.venv-latest/bin:$$PATH .venv-latest/bin/python -m pytest -n 2 \
	  -p no:cacheprovider tests

clean:
	rm -rf $(OUT) .pytest_cache
