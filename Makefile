# otel-decisions: two commands do everything on a fresh machine.
#   make demo   - virtual environment, pinned dependencies, the end-to-end demo on embedded chDB
#   make test   - what the tests need (Python deps, chromium, Go-built collector + Jaeger), then the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: demo test lint install test-deps binaries browser clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installed from constraints.txt (every transitive package pinned); re-run when either file changes.
$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) "pip==25.3"
	$(PIP_INSTALL) -c constraints.txt -e ".[dev,examples]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/otel-decisions demo

# Debian's chromium for the report's browser test (root only; elsewhere the test skips and says why).
browser:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will be skipped"; \
	else echo "note: chromium missing and not root; browser tests will be skipped"; fi

# The OpenTelemetry Collector (minimal distribution) and Jaeger v2, built with Go into .cache/bin.
binaries:
	@if command -v go >/dev/null 2>&1; then scripts/build-binaries; \
	else echo "note: Go is missing; end-to-end tests will be skipped"; fi

test-deps: install browser binaries

# ruff (lint + format) and mypy on the package, configured in pyproject.toml.
lint: install
	$(BIN)/ruff check otel_decisions
	$(BIN)/ruff format --check otel_decisions
	$(BIN)/mypy

test: test-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Refresh constraints.txt from the current virtual environment (maintainers only).
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^otel-decisions' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache otel-decisions-report.html
