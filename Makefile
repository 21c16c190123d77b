# rlgen: `make run` executes the book, `make test` runs the test suite, `make lab` opens JupyterLab.
# Each sets itself up first: a virtual environment in .venv with the CPU build of torch, the package
# with its dev extras, and a Jupyter kernel named "rlgen".
PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= full
ONLY    ?=
RESUME  ?=
JOBS    ?= 1
OUT     ?= build
TORCH   ?= torch==2.13.0

BIN := $(VENV)/bin
# The venv's bin/ first on PATH, so papermill's and nbval's "python3" kernel is the project's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup run test unit notebooks lab book clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# torch first and pinned: an unpinned torch would pull several GB of CUDA packages.
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name rlgen --display-name "Python (rlgen)" >/dev/null
	@touch $@

run: setup
	$(BIN)/python -m rlgen_utils run --profile $(PROFILE) --jobs $(JOBS) --out $(OUT) $(if $(ONLY),--only "$(ONLY)") $(if $(RESUME),--resume)

# Unit tests, every notebook executed by papermill in the smoke profile with its records checked
# against tests/bands.toml, and nbval (lax) over the committed notebooks, also in smoke.
# Two workers with one OpenMP thread each fill two cores without oversubscribing them.
test: setup
	RLGEN_PROFILE=smoke OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 tests
	RLGEN_PROFILE=smoke OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile --nbval-lax -p no:cacheprovider notebooks

unit: setup
	$(BIN)/python -m pytest tests -m "not notebook"

# The website from the committed notebooks (Sphinx + MyST-NB, no execution) into $(OUT)/site, then every page
# checked in headless Chromium (Debian's chromium; without it the site is built and a warning says so).
book: setup
	$(BIN)/python -m rlgen_utils book --out $(OUT)/site

# Extra flags for JupyterLab, e.g. LABFLAGS=--no-browser; root (a container) needs --allow-root.
LABFLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)
lab: setup
	cd notebooks && $(CURDIR)/$(BIN)/jupyter lab --MultiKernelManager.default_kernel_name=rlgen $(LABFLAGS)

clean:
	rm -rf $(OUT) .pytest_cache
