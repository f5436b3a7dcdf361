# `make run` and `make test` each set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLOSEBELL := $(VENV)/bin/closebell

.PHONY: run test bench clean

# The project itself is installed editable (no dependencies of its own: requirements.txt pins them), so
# .venv/bin/closebell is the command and an edit to bot/ needs no reinstall.
$(VENV)/.runtime: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# With DATA_DIR set, replay that history offline instead (FROM and TO pick the window).
FROM ?= 2024-01-01
TO ?= 2024-12-31
run: $(VENV)/.runtime
ifdef DATA_DIR
	$(CLOSEBELL) replay --data-dir $(DATA_DIR) --from $(FROM) --to $(TO) --fresh
else
	$(CLOSEBELL) run
endif

# The shipped rules are tested like code, on the real history beside the project.
HISTORY ?= $(or $(CLOSEBELL_DATA_DIR),../shared/data)
test: $(VENV)/.dev
	$(CLOSEBELL) test-rules --data-dir $(HISTORY)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache
