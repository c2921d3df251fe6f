# Quick start: `make demo` runs the whole job on the embedded default; `make test` runs the tests.
# Both create the virtual environment and install the project first, and are safe to run again.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SHARED_WEIGHTS := $(wildcard ../shared/weights/*.h5)
KERAS_CACHE := $(HOME)/.keras/models
DEMO_HOME ?= $(CURDIR)/.demo

.PHONY: install weights demo test test-fast check clean-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Keras looks for the ImageNet weights in its cache before downloading them; machines without
# internet get them from ../shared (see README, "Offline machines").
weights:
	@mkdir -p $(KERAS_CACHE)
	@for file in $(SHARED_WEIGHTS); do \
		[ -f "$(KERAS_CACHE)/$$(basename $$file)" ] || cp "$$file" "$(KERAS_CACHE)/"; \
	done

demo: install weights
	MONITOR_HOME=$(DEMO_HOME) $(BIN)/monitor demo

test: install weights
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

check: install
	scripts/check

clean-demo:
	rm -rf $(DEMO_HOME)
