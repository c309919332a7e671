# otedi: `make demo` runs the main job on embedded defaults, `make test` runs every test.
# Both create (once) and reuse a virtual environment in .venv with the locked dependencies.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test reliability bench lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[airflow,dev]"
	touch $(STAMP)

demo: $(STAMP)
	OTEDI_HOME=$${OTEDI_HOME:-var/demo} $(BIN)/otedi run --follow-up-days 35

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Only the reliability proofs (kill points, concurrent runs, fuzzing, PHI, Airflow on Celery); `make test` runs them too.
reliability: $(STAMP)
	$(BIN)/pytest -q -m reliability $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# Re-resolve the dependency set from pyproject.toml and write the lock.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e ".[airflow,dev]"
	( echo '# Locked dependency set for otedi (Python 3.11): pip install -c constraints.txt -e ".[airflow,dev]"'; \
	  echo '# Regenerate with `make lock` after changing pyproject.toml dependencies.'; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable ) > constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf var/demo .pytest_cache
