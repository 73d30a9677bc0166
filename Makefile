# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of torch lies on disk on our machines; a looser pin pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0

.PHONY: demo test lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[torch,dev,plot]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/lost_numbers.py

lint: $(STAMP)
	$(BIN)/purelint purelm purelint examples benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .purelint_cache .pytest_cache
