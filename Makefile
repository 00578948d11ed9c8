# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch lies on this machine's disk; pinning it first keeps pip from
# resolving an unpinned torch to a multi-GB CUDA build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
# what ruff checks and formats: all Python of the repository
LINT_PATHS := src napari_dainr tests benchmarks .ci

.PHONY: demo test gui-ready lint format bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dainr demo

# The GUI tests open real napari windows: without an X server and Qt's X11 libraries, Qt
# aborts the whole pytest process mid-run. Install them first (as root), or stop here
# with one line naming them.
test: $(STAMP) gui-ready
	$(BIN)/python -m pytest -q

gui-ready: $(STAMP)
	@$(BIN)/python .ci/gui_ready.py

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

format: $(STAMP)
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

bench: $(STAMP)
	$(BIN)/python benchmarks/quality.py --quick

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
