# Each target sets up its own virtualenv (.venv) on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

CHECKOV = .venv-checkov/bin/checkov

.PHONY: demo test check policy clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/gitops-tool demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

# What CI checks on the committed reference platform, besides the tests.
check: $(BIN)/.installed
	$(BIN)/gitops-tool generate --check
	$(BIN)/gitops-tool validate --schema-dir ../shared/schemas

# checkov in its own virtualenv, so its pins never touch ours.
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet checkov==3.3.30

policy: $(BIN)/.installed $(CHECKOV)
	$(BIN)/python bench/policy_scan.py

clean:
	rm -rf $(VENV) .venv-checkov .pytest_cache
