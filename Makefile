# The README's commands. `make demo` and `make test` work on a fresh clone: they create the
# virtual environment and fetch the stack's jars first (each only once).

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
CHOREO := $(VENV)/bin/choreo

.PHONY: venv jars test demo up down

venv: $(STAMP)

# Re-installs only when pyproject.toml changed (the stamp is older than it).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...).")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

jars: venv
	$(CHOREO) stack fetch

# The session fixture starts a throw-away stack on free ports and stops it at the end
# (or uses KAFKA_BOOTSTRAP_SERVERS + SCHEMA_REGISTRY_URL when both are set).
test: venv jars
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

demo: venv jars
	$(CHOREO) stack up
	$(CHOREO) stack smoke
	@echo ""
	@echo "The stack is running (it stays up). Try next:"
	@echo "  $(CHOREO) stack status"
	@echo "  $(CHOREO) kafka topics --list"
	@echo "  $(CHOREO) kafka console-consumer --topic choreo.smoke --from-beginning --max-messages 3"
	@echo "  $(CHOREO) stack logs registry -n 20"
	@echo "Stop it with: make down   (or $(CHOREO) stack down)"

up: venv jars
	$(CHOREO) stack up

down: venv
	$(CHOREO) stack down
