# otedi: `make demo` runs the main job on embedded defaults, `make test` runs every test.
# Both create (once) and reuse a virtual environment in .venv with the locked dependencies.
# `make test` also builds .venv/edi835: edi-835-parser, an independent 835 reader the tests compare otedi
# with, which needs pandas<3 and so cannot join .venv (its own lock: constraints-edi835.txt).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EDI835 := $(VENV)/edi835
EDI835_STAMP := $(EDI835)/.installed

.PHONY: demo test reliability bench bench-scale lock edi835 lock-edi835 clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[airflow,dev]"
	touch $(STAMP)

$(EDI835_STAMP): constraints-edi835.txt
	$(PYTHON) -m venv $(EDI835)
	$(EDI835)/bin/python -m pip install --quiet --upgrade pip
	$(EDI835)/bin/python -m pip install --quiet -c constraints-edi835.txt edi-835-parser
	touch $(EDI835_STAMP)

edi835: $(EDI835_STAMP)

demo: $(STAMP)
	OTEDI_HOME=$${OTEDI_HOME:-var/demo} $(BIN)/otedi run --follow-up-days 35 || [ $$? -eq 3 ]  # 3: done; the sample's defective rows are rejected

test: $(STAMP) $(EDI835_STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Only the reliability proofs (kill points, concurrent runs, fuzzing, PHI, Airflow on Celery); `make test` runs them too.
reliability: $(STAMP)
	$(BIN)/pytest -q -m reliability $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# Finance on a synthesised 1,000,000-claim warehouse (issue 14 target 6); e.g.
# make bench-scale BENCH_SCALE_ARGS="--claims 100000 --reuse var/bench-scale"
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale $(BENCH_SCALE_ARGS)

# Re-resolve the dependency set from pyproject.toml and write the lock.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e ".[airflow,dev]"
	( echo '# Locked dependency set for otedi (Python 3.11): pip install -c constraints.txt -e ".[airflow,dev]"'; \
	  echo '# Regenerate with `make lock` after changing pyproject.toml dependencies.'; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable ) > constraints.txt
	rm -rf .venv-lock
	$(MAKE) constraints-runtime.txt

# The runtime pins the Docker image installs: constraints.txt less the dev and test tools (the dependency
# closure of pyproject.toml's dependencies and its airflow extra, from .venv's installed metadata).
constraints-runtime.txt: constraints.txt pyproject.toml scripts/runtime_constraints.py $(STAMP)
	$(BIN)/python scripts/runtime_constraints.py > $@.new
	mv $@.new $@

# Re-resolve the edi-835-parser checker's environment (the version is the one constraints-edi835.txt names).
lock-edi835:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet "$$(grep '^edi-835-parser==' constraints-edi835.txt)"
	( sed -n '/^#/p' constraints-edi835.txt; .venv-lock/bin/python -m pip freeze ) > constraints-edi835.txt.new
	mv constraints-edi835.txt.new constraints-edi835.txt
	rm -rf .venv-lock

clean:
	rm -rf var/demo .pytest_cache
