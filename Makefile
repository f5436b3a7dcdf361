# `make run` and `make test` each set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLOSEBELL := $(VENV)/bin/closebell

.PHONY: run test bench mutate clean

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

# Mutation testing, not part of `make test` (an hour on 2 shared cores): mutmut changes the five modules where a wrong
# line does the most harm, one small change (a mutant) at a time, in a copy under mutants/, and runs the tests
# that call the changed function; a mutant every test passes is a gap (README, "Tests"). MUTANTS picks some
# ("bot.store.outbox*"); `.venv/bin/mutmut show NAME` prints one. One child: the cores are shared.
MUTANTS ?=
MUTATE_CHILDREN ?= 1
$(VENV)/.mutate: $(VENV)/.dev requirements-mutate.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-mutate.txt
	touch $@

mutate: $(VENV)/.mutate
	@test -f $(HISTORY)/IWM.csv || { echo "make mutate: no real history in $(HISTORY) (no IWM.csv); set CLOSEBELL_DATA_DIR" >&2; exit 3; }
	CLOSEBELL_DATA_DIR=$(abspath $(HISTORY)) CLOSEBELL_REQUIRE_DATA=1 \
		$(VENV)/bin/mutmut run --max-children $(MUTATE_CHILDREN) $(MUTANTS)
	$(VENV)/bin/mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json && echo
	$(VENV)/bin/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache mutants
