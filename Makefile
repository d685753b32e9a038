# The two commands of the README: `make book` and `make test`.
# Both create .venv if it is missing and install requirements.txt and the helpers (editable).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test lint clean setup variants widgets7

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

# Classic Notebook 6.5.7 with ipywidgets 7.7.1 and widgetsnbextension 3.6.10 (Colab's widget
# versions), for the browser tests of live explorers. No torch of its own: a .pth file puts .venv's
# packages on its path after its own (tests/widgets7-requirements.txt), which shadow them; pip
# (.venv's, run for it) leaves .venv's copies alone ("outside environment").
W7 := .venv-widgets7
W7_STAMP := $(W7)/.installed
PURELIB := import sysconfig; print(sysconfig.get_paths()['purelib'])
widgets7: $(W7_STAMP)

$(W7_STAMP): $(STAMP) tests/widgets7-requirements.txt
	test -x $(W7)/bin/python || $(BIN)/python -m venv --without-pip $(W7)
	echo "import site; site.addsitedir('$$($(BIN)/python -c "$(PURELIB)")')" \
		> "$$($(W7)/bin/python -c "$(PURELIB)")/trainability-main-venv.pth"
	$(BIN)/python -m pip --python $(W7)/bin/python install --quiet -r tests/widgets7-requirements.txt
	touch $@

# The whole suite: the book (its chapters assert their claims), lint, then pytest.
test: book widgets7
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf _build
