# `make run` and `make test` each set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# With DATA_DIR set, replay that history offline instead (FROM and TO pick the window).
FROM ?= 2024-01-01
TO ?= 2024-12-31
run: $(VENV)/.runtime
ifdef DATA_DIR
	$(PY) -m bot replay --data-dir $(DATA_DIR) --from $(FROM) --to $(TO) --fresh
else
	$(PY) -m bot run
endif

# The shipped rules are tested like code, on the real history beside the project.
HISTORY ?= $(or $(CLOSEBELL_DATA_DIR),../shared/data)
test: $(VENV)/.dev
	$(PY) -m bot test-rules --data-dir $(HISTORY)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache
