# The README's commands. `make demo` and `make test` work on a fresh clone: they create the
# virtual environment and fetch the stack's jars first (each only once); `make test` also builds
# helm and installs the system tools its tests use (`make tools`, README's prerequisites).

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
CHOREO := $(VENV)/bin/choreo
TOOLS  := $(CURDIR)/.tools/bin
HELM_VERSION := v4.3.2
HELM   := $(TOOLS)/helm

.PHONY: venv constraints jars system-tools tools check docs test faults demo up down bench

venv: $(STAMP)

# Re-installs only when a pyproject.toml or constraints.txt changed (the stamp is older than it).
# The framework and the reference saga are two distributions of this one checkout, both installed
# editable; every other distribution at the version pinned in constraints.txt.
$(STAMP): pyproject.toml reference/pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...).")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev]' -e ./reference
	touch $(STAMP)

# constraints.txt anew: the newest releases the two pyproject.toml files allow, every extra of
# choreo's included, resolved in a throw-away venv (no constraint applied) and its `pip freeze`
# written sorted by name, less the project's own two distributions; the file's comment lines are
# kept. With Python 3.11, the image's. Run it after changing a dependency, then review the diff.
constraints:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "make constraints resolves with Python 3.11, as the image runs (set PYTHON=...).")'
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT \
	&& extras=$$($(PYTHON) -c 'import tomllib; print(",".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]))') \
	&& echo "resolving .[$$extras] and ./reference in a throw-away venv" \
	&& $(PYTHON) -m venv "$$tmp/venv" \
	&& "$$tmp/venv/bin/pip" install -q --upgrade pip \
	&& env -u PIP_CONSTRAINT "$$tmp/venv/bin/pip" install -q -e ".[$$extras]" -e ./reference \
	&& "$$tmp/venv/bin/pip" freeze --exclude-editable | grep -viE '^choreo([-_]drone[-_]delivery)?[ =@]' \
	   | LC_ALL=C sort -f -t= -k1,1 > "$$tmp/pins" \
	&& { grep '^#' constraints.txt || true; cat "$$tmp/pins"; } > "$$tmp/constraints.txt" \
	&& mv "$$tmp/constraints.txt" constraints.txt \
	&& echo "constraints.txt: $$(wc -l < "$$tmp/pins") pins"

jars: venv
	$(CHOREO) stack fetch

# The system tools the tests use, installed with apt-get when missing and apt-get is there (as
# root, else through sudo); without apt-get this only says so, and the tests that need one fail
# naming it. The browser test (tests/e2e/test_web_ui.py) drives Debian's chromium through
# chromedriver; `choreo graph --format svg` draws with graphviz's `dot`; the alert rules are tested
# with `promtool` and fired by a real `prometheus` (tests/e2e/test_prometheus_alerts.py), both
# from Debian's prometheus package, without its recommends (no exporters). On a systemd host the
# package enables its own service on :9090, which the tests do not use (they start their own).
system-tools:
	@if command -v chromedriver >/dev/null && command -v dot >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then :; \
	elif command -v apt-get >/dev/null; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver graphviz; \
	else echo "chromium, chromium-driver or graphviz is missing and there is no apt-get: install them for the browser and graph tests"; fi
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; \
	else echo "prometheus (with promtool) is missing and there is no apt-get: install it for the alert-rule tests"; fi

# helm, for the chart's tests (tests/unit/test_helm_chart.py): built once from its Go module with
# the machine's Go into .tools/bin, pinned to HELM_VERSION.
$(HELM):
	@command -v go >/dev/null || { echo "helm is built with Go, which is not installed: install Go 1.24 or newer"; exit 1; }
	GOBIN=$(TOOLS) GOTOOLCHAIN=local go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)

tools: system-tools $(HELM)

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
test: check jars tools
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
