# Quick start: `make demo`, `make test`. Both create or reuse .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean

install: $(STAMP)

# face-recognition 1.3.0 declares `dlib`, which has no wheel and compiles for many minutes: it is
# installed without dependencies, and dlib-bin (a pyproject dependency) provides `import dlib`.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	$(PY) -m pip install -q -c requirements.lock --no-deps face-recognition==1.3.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bedcheck demo

test: $(STAMP)
	bash scripts/system_deps.sh
	$(PY) scripts/run_tests.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache
