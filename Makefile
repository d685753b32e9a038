# The two commands of the README: `make book` and `make test`.
# Both create .venv if it is missing and install requirements.txt and the helpers (editable).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test lint clean setup variants

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The execution cache is keyed by each notebook's code, not by the helpers it imports: when
# helpers/ changes, drop the cache so every chapter runs again against the new helpers.
HELPERS_STAMP := _build/.helpers-stamp
$(HELPERS_STAMP): $(wildcard helpers/*.py)
	rm -rf _build/.jupyter_cache _build/jupyter_execute
	mkdir -p _build && touch $@

# Execute every chapter (cached) and build _build/html; warnings are errors.
# TRAINABILITY_BUILD=1 makes explorers precompute their static form and silences progress bars;
# each chapter writes its claims ledger to _build/claims (reference/claims lists them).
# Chapters are executed first, one per core, into the cache that the Sphinx build then reads.
BUILD_ENV := TRAINABILITY_BUILD=1 TRAINABILITY_CLAIMS_DIR=$(CURDIR)/_build/claims
book: $(STAMP) $(HELPERS_STAMP)
	$(BUILD_ENV) $(BIN)/python tools/execute_chapters.py
	$(BUILD_ENV) $(BIN)/jupyter-book build . -W -n --keep-going

# Every chapter again under two other floating-point paths; fails if any claim fails on any.
variants: book
	$(BIN)/python tools/float_variants.py

# The whole suite: the book (its chapters assert their claims), lint, then pytest.
test: book
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf _build
