# The two commands of the README. Each makes its own virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# kinesis-mock, the faithful local Kinesis of the resharding and KCL tests (infra/kinesis_mock.py)
KINESIS_MOCK := $(VENV)/node/node_modules/kinesis-local/main.js
KINESIS_MOCK_VERSION := 0.6.2

.PHONY: demo test lint bench clean browser wrk

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "streamrec needs Python 3.11 or newer: run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,kcl]'
	@touch $(STAMP)

$(KINESIS_MOCK): | $(STAMP)
	@command -v npm >/dev/null || { echo "make test needs Node.js 18+ and npm (for kinesis-mock)"; exit 1; }
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node kinesis-local@$(KINESIS_MOCK_VERSION)

# The dashboard's browser test drives Debian's Chromium through its chromedriver
# (tests/e2e/test_dashboard.py). Installed here when missing and this is root on Debian; the test
# is skipped, saying why, where it cannot be.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; }; } || \
	  echo "note: no chromium/chromedriver: the dashboard's browser test will be skipped"

# bench/serving.py measures cache hits with wrk (Debian's C load generator) when it is there:
# the Python client's own p99 is near the 5 ms measured. Installed like Chromium above.
wrk:
	@command -v wrk >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q wrk >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; }; }; } || \
	  echo "note: no wrk: bench/serving.py measures hits with its Python client only"

demo: $(STAMP)
	$(BIN)/streamrec demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint $(KINESIS_MOCK) browser wrk
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
