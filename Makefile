# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of torch lies on disk on our machines; a looser pin pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0

.PHONY: demo test test-all lint install clean

install: $(STAMP)

# Two distributions (docs/install.md): the root is the light linter
# (purelint, with the dev tools), packaging/purelm the model toolkit; both editable, in one pip call.
$(STAMP): pyproject.toml packaging/purelm/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]" -e "./packaging/purelm[torch,plot,tensorboard]"
	@# A .venv from before the split had one purelm distribution owning both commands: replacing it
	@# removed bin/purelint after purelint had installed it.
	test -x $(BIN)/purelint || $(BIN)/python -m pip install -q --no-deps --force-reinstall -e .
	touch $(STAMP)

# The tutorial's toy in both frameworks, then a real model: ~1,000 steps on this interpreter's stdlib.
DEMO_RUN := runs/demo
demo: $(STAMP)
	$(BIN)/python examples/lost_numbers.py
	@echo
	rm -rf $(DEMO_RUN)
	$(BIN)/purelm train --out $(DEMO_RUN) --steps 1000 --embed-dim 32 --hidden-dim 128 --eval-every 250 --log-every 50
	@echo
	$(BIN)/purelm sample $(DEMO_RUN) --prompt "def " --length 300 --temperature 0.8 --top-k 40 --seed 0
	@echo
	@echo "loss plot: $(DEMO_RUN)/loss.png   (metrics: $(DEMO_RUN)/metrics.jsonl)"

# The code's form (ruff), its types (mypy) and its purity (purelint, on itself), then every test.
CODE := purelm purelint tests benchmarks examples
lint: $(STAMP)
	$(BIN)/ruff format --check --quiet $(CODE)
	$(BIN)/ruff check --quiet $(CODE)
	$(BIN)/mypy
	$(BIN)/purelint purelm purelint examples benchmarks

# `make test` leaves out the tests marked slow (long integration runs, about a minute more on 2 cores);
# `make test-all`, and CI (`make test PYTEST_MARKS=`), run every test.
PYTEST_MARKS ?= not slow
test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "$(PYTEST_MARKS)"

test-all:
	$(MAKE) test PYTEST_MARKS=

clean:
	rm -rf $(VENV) .purelint_cache .pytest_cache
