# `make run` and `make test` each do the whole set-up on a fresh machine:
# create .venv, install the project with its test extras, install the kernelspec into the venv,
# and compile the package's bytecode (the editable install does not; a kernel that finds
# none compiles it in memory at every start when PYTHONDONTWRITEBYTECODE is set).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench e2e soak clean eg fleet

setup: $(STAMP)

$(STAMP): pyproject.toml tests/corpus/manifest.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m kernel install --sys-prefix
	$(PY) tests/corpus/fetch.py
	$(PY) -m compileall -q kernel
	touch $(STAMP)

run: $(STAMP)
	$(PY) examples/run_demo.py examples/demo.ipynb

test: lint
	$(PY) -m pytest -q

# ruff over everything; mypy over kernel/ (its configuration is in pyproject.toml)
lint: $(STAMP)
	$(VENV)/bin/ruff check kernel tests examples benchmarks e2e
	$(VENV)/bin/mypy

# The anchors (xeus-python, async-kernel) are installed for the benchmark only, never by
# `make test`; each installs its own kernelspec (xpython, async) into the venv.
# Bytecode first: with PYTHONDONTWRITEBYTECODE set (as on the CI machines) an editable
# install would recompile the package at every kernel start (30-50 ms).
bench: $(STAMP)
	$(PY) -m pip install --quiet xeus-python async-kernel
	$(PY) -m compileall -q kernel
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
