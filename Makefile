# Every target sets itself up: a fresh clone needs nothing but python3 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Two stamps: running the suite needs the runtime dependencies only; the project's own tests, lint and bench need
# the dev extra too. The dev install covers the runtime one, so it refreshes both stamps; `make conformance` then
# `make test` installs the dev extra on top.
RUNTIME := $(VENV)/.installed-runtime
DEV     := $(VENV)/.installed-dev
REPORT_DIR ?= reports
# pytest rewrites the asserts of every module of a pytest plugin's distribution (Schemathesis and Hypothesis ship
# plugins: ~320 modules) and caches the result beside the bytecode. With PYTHONDONTWRITEBYTECODE set (as in some
# CI images) nothing is cached and every pytest process compiles them again: ~1.5 s of each suite run's start-up,
# paid by each of the ~150 suite processes `make test` starts. The cache lives in .venv and __pycache__ (ignored).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: conformance test serve report docs lint mutation bench clean setup gateway-demo matrix

$(RUNTIME): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e .
	@touch $(RUNTIME)

$(DEV): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	@touch $(RUNTIME) $(DEV)

## setup: a development environment (.venv with the dev extra)
setup: $(DEV)

## conformance: run the suites against the bundled reference server; reports land in reports/
conformance: $(RUNTIME)
	$(BIN)/python -m pytest suites --report-dir $(REPORT_DIR) $(ARGS)

## test: lint, then the project's own tests (reference server, suites vs variants, reports, CLI)
test: lint
	$(BIN)/python -m pytest tests -n 2 --dist loadfile $(ARGS)

## mutation: the suite and stock Schemathesis against every broken variant; score table, reports/mutation.json
mutation: $(RUNTIME)
	$(BIN)/python -m proving.mutation --report-dir $(REPORT_DIR) $(ARGS)

## bench: performance figures (efficiency vs a bare replay, stock Schemathesis, smoke, scaling); bench/RESULTS.md
bench: $(DEV)
	$(BIN)/python -m bench.run --report-dir $(REPORT_DIR) $(ARGS)

serve: $(RUNTIME)
	$(BIN)/modmsg serve --host 127.0.0.1 --port 8080 $(ARGS)

## gateway-demo: the suites through the Portkey gateway (pinned in recipes/portkey/, needs node+npm) on loopback
gateway-demo: $(RUNTIME)
	$(BIN)/python scripts/gateway_demo.py --report-dir $(REPORT_DIR)/gateway $(ARGS)

## matrix: the suites through pinned real gateways (Portkey, LiteLLM, Prism) on loopback; docs/compatibility.md
matrix: $(RUNTIME)
	$(BIN)/python -m proving.matrix $(ARGS)

## soak: the reference server under 10,000 Schemathesis requests (all operations, both modes) and 16 clients for 30 s
.PHONY: soak
soak: $(RUNTIME)
	$(BIN)/python -m proving.soak --cases 10000 --clients 16 --seconds 30 $(ARGS)

docs: $(RUNTIME)
	$(BIN)/python -m proving.docs

## lint: ruff, mypy over the package, and the layer contracts of pyproject.toml (import-linter); a few seconds
lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy modmsg
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache $(REPORT_DIR)/* *.egg-info
	@touch $(REPORT_DIR)/.gitkeep
