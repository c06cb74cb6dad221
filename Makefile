# Each target sets up its own virtualenv (.venv) on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test check clean

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

clean:
	rm -rf $(VENV) .pytest_cache
