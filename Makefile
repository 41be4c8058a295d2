# Everything a fresh machine needs is installed by these targets; each step is skipped when
# already done. `make test` and `make demo` are the two commands the README documents.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DOLT_INSTALL_DIR ?= $(HOME)/.local/bin

export PATH := $(DOLT_INSTALL_DIR):$(PATH)
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
# Without it every dolt start leaves a detached `dolt send-metrics` process behind.
export DOLT_DISABLE_EVENT_FLUSH := 1

.PHONY: setup dolt python browser test demo demo-server quickstart lint bench fuzz dist clean

setup: dolt python

dolt:
	DOLT_INSTALL_DIR=$(DOLT_INSTALL_DIR) scripts/install-dolt

python: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py kedro_dolt_json.pth
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,doltcli,server]"
	touch $@

# Headless Chromium and its driver (Debian) for the kedro-viz browser test.
browser:
	scripts/install-browser

# Two pytest workers (pytest-xdist), each taking whole test files: most of a test's time is
# spent waiting for Dolt and kedro processes. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: setup browser lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

demo: setup
	KEDRO=$(abspath $(VENV))/bin/kedro scripts/demo

# The same demo with every Dolt dataset on a local `dolt sql-server` (README: Outgrowing one
# machine); the script starts the server and stops it when it ends.
demo-server: setup
	KEDRO=$(abspath $(VENV))/bin/kedro scripts/demo --server

quickstart: setup
	$(PY) examples/quickstart.py

# ruff, strict mypy, and the structure rules of scripts/check-structure (no import cycle,
# layers, cyclomatic complexity <= 15 by radon, modules <= 500 lines).
lint: python
	$(VENV)/bin/ruff check kedro_dolt tests bench examples scripts/check-structure _kedro_dolt_json.py setup.py
	$(VENV)/bin/ruff format --check kedro_dolt tests bench examples _kedro_dolt_json.py setup.py
	$(VENV)/bin/mypy
	$(PY) scripts/check-structure

# The issue-9 benchmark (about 16 minutes on 2 busy cores); a quick run:
# make bench BENCH_ARGS="--sizes 10000,100000 --repeats 3 --only save,load"
bench: setup
	$(PY) bench/bench_goals.py $(BENCH_ARGS)
	$(PY) bench/bench_server.py $(BENCH_SERVER_ARGS)
	$(PY) bench/bench_speed.py $(BENCH_SPEED_ARGS)
	$(PY) bench/bench_incremental.py $(BENCH_INCREMENTAL_ARGS)
	$(PY) bench/bench_spaceflights.py $(BENCH_SPACEFLIGHTS_ARGS)

# The incremental-run fuzzer's long run: 500 random sequences of changes per engine (local
# repository and dolt sql-server), each run checked against a full run from scratch; exits 1 on
# any wrong skip. `make test` runs a few of the same sequences. A quick run:
# make fuzz FUZZ_ARGS="--sequences 50 --engines cli --kinds closure,swap_inputs"
fuzz: setup
	$(PY) bench/fuzz_incremental.py $(FUZZ_ARGS)

# The sdist and the wheel (README: Add kedro-dolt to your project), built from a copy of the
# checkout: only $(DIST) is written.
DIST ?= dist
dist:
	PYTHON=$(PYTHON) scripts/dist $(DIST)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo
	rm -rf demo_project/data/warehouse demo_project/data/remote demo_project/data/kedro_dolt
	rm -rf demo_project/data/dolt-server
