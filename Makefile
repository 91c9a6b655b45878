# Two commands do everything on a fresh machine:
#   make book   creates .venv, installs the project, builds (executes) the book on the lite default
#   make test   creates .venv, installs the project, lints (ruff), runs the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test venv train clean

$(STAMP): pyproject.toml requirements-lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements-lock.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	bash tools/build_book.sh

test: $(STAMP)
	$(BIN)/ruff check pada_lite tests benchmarks tools
	$(BIN)/python -m pytest -q -ra

train: $(STAMP)
	$(BIN)/python -m pada_lite train --preset lite
	$(BIN)/python -m pada_lite rank --run runs/lite --ground-truth lite

clean:
	rm -rf _build runs
