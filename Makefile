# Quick start: `make demo`, `make test`. Both create or reuse .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# wheel (default) or source: see the dlib note below.
BEDCHECK_DLIB ?= wheel

.PHONY: demo test lint bench install clean bedside

install: $(STAMP)

# dlib: the prebuilt dlib-bin wheel (the default engine and liveness use no dlib model; it serves the optional
# dlib engine); `make install BEDCHECK_DLIB=source` builds it against OpenBLAS instead (about 7 minutes once,
# encodings 4x faster for a site on the dlib engine; after `make clean`): see scripts/install_dlib.sh.
# face-recognition 1.3.0 declares `dlib` by name, so it is installed without dependencies.
# mediapipe 0.10.21 only carries the Face Mesh landmark model (the last release that ships it); its code is never
# imported, so it is installed without its dependencies (models/faces/model_files.py reads and checks the file).
$(STAMP): pyproject.toml requirements.lock scripts/install_dlib.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	BEDCHECK_DLIB=$(BEDCHECK_DLIB) bash scripts/install_dlib.sh $(PY)
	$(PY) -m pip install -q -c requirements.lock --no-deps face-recognition==1.3.0
	$(PY) -m pip install -q -c requirements.lock --no-deps mediapipe==0.10.21
	touch $(STAMP)

# The bedside web app: rebuilt when its sources change (npm at install time only, see scripts/build_bedside.sh).
BEDSIDE := server/bedside/static/sw.js
$(BEDSIDE): $(STAMP) scripts/build_bedside.sh server/bedside/build.py $(wildcard web/bedside/*.json web/bedside/*.js web/bedside/*.html web/bedside/src/*)
	bash scripts/build_bedside.sh $(PY)

bedside: $(BEDSIDE)

demo: $(STAMP) $(BEDSIDE)
	$(VENV)/bin/bedcheck demo

test: $(STAMP) $(BEDSIDE)
	bash scripts/system_deps.sh
	$(PY) scripts/run_tests.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy models

clean:
	rm -rf $(VENV) .pytest_cache server/bedside/static web/bedside/node_modules
