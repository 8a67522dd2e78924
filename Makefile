# Two commands do all set-up on a fresh machine (see README):
#   make demo   -> installs into .venv if needed, then runs the main job on the embedded default
#   make test   -> installs into .venv if needed, then runs the test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (metadrive-simulator 0.4.3 needs Python 3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: demo test bench
demo: $(BIN)/.installed
	$(BIN)/sd-sim demo --out outputs/demo

test: $(BIN)/.installed
	$(BIN)/pytest

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks
