# `make run` and `make test` each do the whole set-up on a fresh machine:
# create .venv, install the project with its test extras, install the kernelspec into the venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench e2e soak clean eg fleet

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m kernel install --sys-prefix
	touch $(STAMP)

run: $(STAMP)
	$(PY) examples/run_demo.py examples/demo.ipynb

test: $(STAMP)
	$(VENV)/bin/ruff check kernel tests examples benchmarks e2e
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check kernel tests examples benchmarks e2e

bench: $(STAMP)
	$(PY) benchmarks/bench.py

soak: $(STAMP)
	$(PY) benchmarks/soak.py

e2e: $(STAMP)
	bash e2e/setup.sh $(VENV)
	$(PY) -m pytest e2e -q

# Jupyter Enterprise Gateway in a venv of its own: EG 3.x pins jupyter_client 6 and
# pyzmq 24, which would downgrade .venv. `make eg` runs the launcher tests against it.
EG_VENV := .venv-eg
EG_STAMP := $(EG_VENV)/.installed

$(EG_STAMP):
	test -x $(EG_VENV)/bin/python || $(PYTHON) -m venv $(EG_VENV)
	$(EG_VENV)/bin/python -m pip install --quiet "jupyter_enterprise_gateway>=3.2,<4"
	touch $(EG_STAMP)

eg: $(STAMP) $(EG_STAMP)
	TRIO_KERNEL_EG_VENV=$(EG_VENV) TRIO_KERNEL_REQUIRE_EG=1 $(PY) -m pytest -q tests/test_gateway.py

fleet: $(STAMP)
	$(PY) benchmarks/fleet.py

clean:
	rm -rf $(VENV) $(EG_VENV) build *.egg-info
