# The README's commands. `make demo` and `make test` work on a fresh clone: they create the
# virtual environment and fetch the stack's jars first (each only once).

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
CHOREO := $(VENV)/bin/choreo

.PHONY: venv jars browser check docs test faults demo up down bench

venv: $(STAMP)

# Re-installs only when a pyproject.toml changed (the stamp is older than it). The framework and
# the reference saga are two distributions of this one checkout, both installed editable.
$(STAMP): pyproject.toml reference/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...).")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]' -e ./reference
	touch $(STAMP)

jars: venv
	$(CHOREO) stack fetch

# The system tools the tests use: the browser test (tests/e2e/test_web_ui.py) drives Debian's
# chromium through chromedriver, and `choreo graph --format svg` draws with graphviz's `dot`.
# They are installed with apt-get when missing and apt-get is there (as root, else through sudo).
# Without apt-get this only says so, and the browser test fails naming what to install.
browser:
	@if command -v chromedriver >/dev/null && command -v dot >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then :; \
	elif command -v apt-get >/dev/null; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver graphviz; \
	else echo "chromium, chromium-driver or graphviz is missing and there is no apt-get: install them for the browser and graph tests"; fi

# Lint and type-check every package (the packages are listed under [tool.mypy] in pyproject.toml).
check: venv docs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The documentation site, built strictly: a broken link or anchor, a page left out of the nav or
# a generated page that cannot be made fails (mkdocs.yml).
docs: venv
	$(VENV)/bin/mkdocs build --strict --quiet

# ruff and mypy first, then pytest. The session fixture starts a throw-away stack on free ports
# and stops it at the end (or uses KAFKA_BOOTSTRAP_SERVERS + SCHEMA_REGISTRY_URL when both are set).
test: check jars browser
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# Only the fault suite (also part of `make test`): the saga under broker, registry, worker and
# store faults, on the session's stack and on a 3-node cluster of its own; prints a table.
faults: venv jars
	$(VENV)/bin/pytest -q tests/faults $(PYTEST_ARGS)

# The whole saga on the local stack: topics, schemas, seed, every installed service, a few hundred
# orders shown live, then outcomes, the audit and what to try next. The stack stays up.
demo: venv jars
	$(CHOREO) stack up
	$(CHOREO) demo $(DEMO_ARGS)
	@echo "The stack is still running: try the commands above, then 'make down'."

up: venv jars
	$(CHOREO) stack up

down: venv
	$(CHOREO) stack down

# Every benchmark on one stack (KAFKA_BOOTSTRAP_SERVERS + SCHEMA_REGISTRY_URL, else the running
# local stack, else one of its own, stopped at the end); one table, also in bench/results/.
# QUICK=1: the same code on tiny inputs, in about two minutes. ONLY=codec,rebuild (any of stage,
# codec, rebuild, saga, scale, recovery, memory): those sections alone. Quix Streams gets its own venv
# in bench/.quix-venv on the first run.
bench: venv jars
	$(VENV)/bin/python -m bench $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))
