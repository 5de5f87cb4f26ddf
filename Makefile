# make reproduce : tables and figures on the embedded synthetic data (CPU, no download)
# make test      : unit tests + every notebook under nbval in smoke settings (what CI runs)
# Both create .venv from pyproject.toml first if it is missing or out of date.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATASET ?= synthetic
DATA_DIR ?=
ARCH ?= resnet18 vgg16
PROFILE ?= default
RUN_NAME ?=
PARAMS ?=

.PHONY: reproduce test lab notebooks clean-runs

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e .
	touch $@

reproduce: $(VENV)/.installed
	$(PY) -m gadlib.reproduce --dataset $(DATASET) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) \
		--archs $(ARCH) --profile $(PROFILE) $(if $(RUN_NAME),--run-name $(RUN_NAME)) $(PARAMS)

# Smoke runs write to build/, never to runs/ or figures/.
test: $(VENV)/.installed
	rm -rf build/test-runs build/test-figures
	GAD_PROFILE=smoke GAD_RUNS_DIR=build/test-runs GAD_FIGURES_DIR=build/test-figures \
		$(PY) -m pytest -q -p no:cacheprovider tests
	GAD_PROFILE=smoke GAD_RUNS_DIR=$(CURDIR)/build/test-runs GAD_FIGURES_DIR=$(CURDIR)/build/test-figures \
		$(PY) -m pytest -q -p no:cacheprovider --nbval-lax notebooks

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks

notebooks: $(VENV)/.installed
	$(PY) tools/build_notebooks.py

clean-runs:
	rm -rf runs build
