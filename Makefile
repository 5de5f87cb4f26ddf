# make reproduce : tables and figures on the embedded synthetic data (CPU, no download)
# make test      : unit tests + every notebook under nbval in smoke settings (what CI runs)
# make test-heavy : the tests make test leaves out (a sweep worker killed mid-point)
# make lint      : ruff: lint and format check (CI runs it first)
# Every target that runs Python creates .venv from pyproject.toml first if it is missing or out of date.
# make readme-tables    : rewrite the tables of README.md and docs/*.md from figures/<run>/ (never by hand)
# make paper-comparison : the paper's Table 1 and 2 beside the two real-image runs
# make precision-check  : the default synthetic run with precision forced to fp32 and to bf16
# make train-precision-check : the default synthetic run with its models trained in bf16 on the CPU
# make machine-check    : the default synthetic run again on this machine (RUN_NAME, synthetic-rerun unless set),
#                         its verdicts and test accuracies against the committed figures/synthetic-default
# make what-changed     : how the committed runs' verdicts and numbers moved since SINCE (f40dc9b unless set; for f40dc9b it rewrites the committed record)
# make controls-summary : notebook 07's verdicts of the committed runs side by side
# make direction-summary : the paper's verdicts of the committed runs, counted (the README's prose cites them)
# make reviewer-checks : the committed runs' baseline checks and sanity intervals, counted (the README's prose cites them)
# make seed-checks : the seed sweeps' verdicts and controls, seed by seed and pooled (make sweep SWEEP=seeds ..., README), at 224 px in seed_checks_224*.md and at 128 px in seed_checks_128*.md; all in one picture, figures/verdicts.png
# make rc-ties : where RC < 1 fails under 10%-of-max hulls, 8 training epochs against 24, from the sweeps' run folders (run them here first; README, question 7)
# make accuracy-spread : ResNet18's test accuracy on both packs over 10 training seeds, with and without the speed levers (about 20 min)
# make benchmark : speed of hulls, attributions and training against the plain way (CPU sizes)
# make benchmark-gpu : the same at the paper's sizes, on a GPU (benchmarks/gpu.sh, build/benchmarks/)
# make device-kit : wheels and the birds pack in .device/, for benchmarks/device_run.sh on a lent GPU machine
# make sweep     : a parameter sweep on Dask (SWEEP=name GRID=file.yaml or PARAMS="-p NAME=[VALUES]")
# make alpha-selection : choose alphas from the training split, then sweep them against 2-4-6-8 (resnet18)
# make lab       : the notebooks in JupyterLab
# make notebooks : sync each notebook with its paired .py file (jupytext; the newer one wins)
# make clean-runs : delete runs/ and build/ (cached models and attributions)
# make help      : this list
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATASET ?= synthetic
DATA_DIR ?=
ARCH ?= resnet18 vgg16
PROFILE ?= default
RUN_NAME ?=
PARAMS ?=
SWEEP ?= alphas-q
GRID ?= sweeps/$(SWEEP).yaml
SWEEP_ARGS ?=

help:
	@sed -n '/^[^#]/q; s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

.PHONY: help reproduce sweep alpha-selection test test-heavy lint benchmark benchmark-gpu device-kit lab notebooks clean-runs readme-tables paper-comparison precision-check train-precision-check machine-check what-changed controls-summary direction-summary reviewer-checks seed-checks rc-ties accuracy-spread

# uv installs the same releases as pip (same pins, and pip's own package sources, see
# tools/pip_sources.py): this target took 45 s, against 104 s with pip (benchmarks/README.md).
# pip takes over if uv cannot.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv && \
	  $(PY) tools/pip_sources.py | xargs -d '\n' $(VENV)/bin/uv pip install -q --python $(PY) \
	    --index-strategy unsafe-best-match --no-compile -e '.[dev]' || \
	  { echo "uv could not install the environment (above); installing with pip instead" >&2; \
	    $(PY) -m pip install -q --disable-pip-version-check --no-compile -e '.[dev]'; }
	@# Installed without byte-compiling, which pip does one file at a time; compileall uses every core.
	@# Where PYTHONDONTWRITEBYTECODE is set (it is on the machines this was timed on), a module
	@# compiled now is one that no process compiles again. The packages' own test suites (a quarter
	@# of the files, never imported) are left out: 35 -> 23 s here. Some packages ship files that do
	@# not compile (pip skips them too), hence || true.
	$(PY) -m compileall -q -j 0 -x '/tests?/' $(VENV)/lib > /dev/null || true
	touch $@

reproduce: $(VENV)/.installed notebooks
	$(PY) -m gadlib.reproduce --dataset $(DATASET) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) \
		--archs $(ARCH) --profile $(PROFILE) $(if $(RUN_NAME),--run-name $(RUN_NAME)) $(PARAMS)

# A grid of notebook parameters, each point a notebook chain, run in parallel on Dask (gadlib/sweep.py):
# runs/$(SWEEP)/<point>/, figures/$(SWEEP)/<point>/ and figures/$(SWEEP)/points.csv.
# before anything is installed or synced: a SWEEP without its sweeps/<SWEEP>.yaml and without
# PARAMS would reach the sweep with an empty grid (a step of make sweep, not a target of its own:
# not in .PHONY, which make help lists)
sweep-grid:
	@if [ ! -f "$(GRID)" ] && [ -z "$(strip $(PARAMS))" ]; then \
	  echo "error: make sweep SWEEP=$(SWEEP) has no grid: $(GRID) does not exist; give GRID=FILE.yaml" \
	       "(e.g. GRID=sweeps/alphas-q.yaml) or PARAMS=\"-p NAME=[VALUES]\"" >&2; exit 2; fi

sweep: sweep-grid $(VENV)/.installed notebooks
	$(PY) -m gadlib.sweep $(SWEEP) $(if $(wildcard $(GRID)),--grid $(GRID)) --dataset $(DATASET) \
		$(if $(DATA_DIR),--data-dir $(DATA_DIR)) --archs $(ARCH) --profile $(PROFILE) $(PARAMS) $(SWEEP_ARGS)

alpha-selection: $(VENV)/.installed notebooks
	$(PY) -m gadlib.alpha_selection --dataset $(DATASET) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) \
		--profile $(PROFILE) --arch $(firstword $(ARCH)) --evaluate

# Smoke runs write to build/, never to runs/ or figures/. The smoke notebooks' tiny tensor ops
# leave torch's OpenMP threads spinning between them, on the core the next notebook's kernel is
# warming up on; PASSIVE puts them to sleep (a pack chain 39 s -> 32 s here). Real runs keep the
# default: PASSIVE made VGG16's CPU training about 5% slower (tools/cpu_bound.py with and without it).
# Every notebook kernel of make test is a fork of a process that imported torch once
# (GAD_FORK_KERNELS for the runner's chains, `python -m gadlib.forkkernel` around nbval): a smoke
# notebook's kernel spent more time importing torch than running the notebook.
TEST_ENV = OMP_WAIT_POLICY=PASSIVE GAD_PROFILE=smoke GAD_FORK_KERNELS=1
# The unit tests run on pytest-xdist workers, each with its share of the cores (tests/conftest.py):
# one pytest process used 0.87 of its 2 cores on average (314 s of CPU in 362 s), most of its
# time in kernels starting and notebooks waiting on them. nbval's notebooks stay in one process,
# after them: notebook 08 reads the sweep a unit test leaves in build/.
TEST_WORKERS ?= 2

test: $(VENV)/.installed
	@before=$$($(NB_HASH)); $(MAKE) --no-print-directory notebooks; \
	if [ "$$before" != "$$($(NB_HASH))" ]; then \
	  echo "error: notebooks/ had outputs or a notebook and its .py differed; make notebooks fixed that:" \
	       "review git diff notebooks/, commit, and run make test again"; exit 1; fi
	rm -rf build/test-runs build/test-figures
	$(TEST_ENV) GAD_RUNS_DIR=build/test-runs GAD_FIGURES_DIR=build/test-figures \
		$(PY) -m pytest -q -p no:cacheprovider -m "not heavy" -n $(TEST_WORKERS) --dist worksteal tests
	$(TEST_ENV) GAD_RUNS_DIR=$(CURDIR)/build/test-runs GAD_FIGURES_DIR=$(CURDIR)/build/test-figures \
		GAD_SWEEP=test-sweep $(PY) -m gadlib.forkkernel $(PY) -m pytest -q -p no:cacheprovider --nbval-lax notebooks

test-heavy: $(VENV)/.installed
	GAD_PROFILE=smoke $(PY) -m pytest -q -p no:cacheprovider -m heavy tests

benchmark: $(VENV)/.installed
	$(PY) benchmarks/speed.py

benchmark-gpu: $(VENV)/.installed
	PYTHON=$(PY) bash benchmarks/gpu.sh build/benchmarks

device-kit: $(VENV)/.installed
	$(PY) tools/device_kit.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# JupyterLab refuses to run as root (containers) unless told; it prints the URL to open.
lab: $(VENV)/.installed notebooks
	@echo "JupyterLab: open the http://...?token=... URL printed below; Ctrl-C stops it."
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The newer file of each pair wins; then outputs are cleared (notebooks are committed without).
notebooks: $(VENV)/.installed
	$(VENV)/bin/jupytext --sync --quiet notebooks/0*.ipynb
	$(VENV)/bin/jupyter nbconvert --log-level=WARN --clear-output --inplace notebooks/0*.ipynb

# make test syncs too, but fails if that changed anything: what is committed must be in sync.
NB_HASH = cat notebooks/0*.ipynb notebooks/0*.py | cksum

clean-runs:
	rm -rf runs build

# $(call into,FILE,COMMAND): COMMAND's output becomes FILE only if COMMAND succeeds; a failure
# leaves a committed FILE as it was (a plain `> FILE` would empty it before COMMAND starts).
into = $(strip $(2)) > $(1).part || { rm -f $(1).part; exit 1; }; mv $(1).part $(1)

readme-tables: $(VENV)/.installed
	$(PY) tools/readme_tables.py

paper-comparison: $(VENV)/.installed
	$(call into,figures/catsdogs-cpu/paper_comparison.md,$(PY) tools/compare_with_paper.py figures/catsdogs-cpu catsdogs top_q)
	$(call into,figures/cub-cpu/paper_comparison.md,$(PY) tools/compare_with_paper.py figures/cub-cpu birds top_q)

# Same trained models as `make reproduce` (copied, the cache keys match), attributions forced to
# one precision, then the direction verdicts of the two runs compared.
precision-check: $(VENV)/.installed
	for p in fp32 bf16; do \
	  for a in $(ARCH); do mkdir -p runs/synthetic-$$p/$$a; \
	    if [ -d runs/synthetic-default/$$a/models ]; then cp -rn runs/synthetic-default/$$a/models runs/synthetic-$$p/$$a/; fi; done; \
	  $(PY) -m gadlib.reproduce --run-name synthetic-$$p --archs $(ARCH) --no-controls -p precision=$$p || exit 1; \
	done
	$(call into,figures/synthetic-bf16/precision_check.md,$(PY) tools/compare_runs.py figures/synthetic-fp32 figures/synthetic-bf16)
	cat figures/synthetic-bf16/precision_check.md

# train_precision=bf16 (a lever where the CPU has native bf16): other models than the committed
# fp32 run's, so their verdicts and test accuracies are compared with it.
train-precision-check: $(VENV)/.installed notebooks
	$(PY) -m gadlib.reproduce --run-name synthetic-bf16-train --archs $(ARCH) -p train_precision=bf16
	$(call into,figures/synthetic-bf16-train/precision_check.md,\
		$(PY) tools/compare_runs.py figures/synthetic-default figures/synthetic-bf16-train)
	cat figures/synthetic-bf16-train/precision_check.md

# The same command on another machine trains other models (floating point differs between CPUs):
# which verdicts does that move?
RERUN = $(or $(RUN_NAME),synthetic-rerun)
machine-check: $(VENV)/.installed notebooks
	@if [ "$(RERUN)" = synthetic-default ]; then \
	  echo "error: RUN_NAME=synthetic-default is the committed run this check compares with; choose another" >&2; exit 2; fi
	$(PY) -m gadlib.reproduce --run-name $(RERUN)
	$(call into,figures/$(RERUN)/machine_check.md,$(PY) tools/compare_runs.py figures/synthetic-default figures/$(RERUN))
	cat figures/$(RERUN)/machine_check.md

SINCE ?= f40dc9b
what-changed: $(VENV)/.installed
	$(call into,figures/changes_since_$(SINCE).md,\
		$(PY) tools/what_changed.py $(SINCE) figures/synthetic-default figures/cub-cpu figures/catsdogs-cpu)

CONTROL_RUNS ?= figures/synthetic-default figures/synthetic-frozen figures/cub-cpu figures/catsdogs-cpu
controls-summary: $(VENV)/.installed
	$(call into,figures/controls_summary.md,$(PY) tools/controls_summary.py $(CONTROL_RUNS))
	cat figures/controls_summary.md

direction-summary: $(VENV)/.installed
	$(call into,figures/direction_summary.md,$(PY) tools/direction_summary.py $(CONTROL_RUNS))
	cat figures/direction_summary.md

reviewer-checks: $(VENV)/.installed
	$(call into,figures/reviewer_checks.md,$(PY) tools/reviewer_checks.py $(CONTROL_RUNS))
	cat figures/reviewer_checks.md

SEED_SWEEPS ?= figures/seeds figures/seeds-birds figures/seeds-catsdogs \
	figures/seeds-vgg16 figures/seeds-birds-vgg16 figures/seeds-catsdogs-vgg16
# birds at the paper's 224 px: the size sweep's point (seed 0) and seeds 1 to 3 (README, question 9)
SIZE_SEED_SWEEPS ?= figures/size-birds figures/size-birds-seeds
# cats vs dogs at 224 px, seeds 0 to 2, apart: its originals are near chance (README, question 9)
SIZE_SEED_SWEEPS_CATSDOGS ?= figures/size-catsdogs-seeds
# birds at 128 px: the size sweep's point (seed 0) and seeds 1 to 3; cats vs dogs: seeds 0 to 2 (question 9)
SIZE_SEED_SWEEPS_128 ?= figures/size-birds figures/size-birds-seeds-128
SIZE_SEED_SWEEPS_128_CATSDOGS ?= figures/size-catsdogs figures/size-catsdogs-seeds-128
# birds at 128 px with VGG16: seeds 0 to 2 (question 9: is the narrowing from 64 to 128 px ResNet18's alone?)
SIZE_SEED_SWEEPS_128_VGG16 ?= figures/size-birds-vgg16-128
# VGG16 on birds at 64 px, seeds 0 to 2, on the EPYC with native bf16: the machine apart from the size
# (seeds-birds-vgg16 ran on the AVX2-only EPYC; docs/sweeps.md)
MACHINE_SWEEPS_VGG16 ?= figures/machine-birds-vgg16
# VGG16 on cats vs dogs trained three times as long (24 epochs), seeds 0 to 5: at 8 its originals are at chance (question 7)
EPOCH_SWEEPS_CATSDOGS_VGG16 ?= figures/epochs-catsdogs-vgg16
# ResNet18 on cats vs dogs trained for 24 epochs, seeds 0 to 5: are its weak originals why the paper's RS direction fails there? (question 7)
EPOCH_SWEEPS_CATSDOGS ?= figures/epochs-catsdogs
# ResNet18 on birds trained for 24 epochs, seeds 0 to 5: does the training length decide the verdicts where the originals are fair? (question 7)
EPOCH_SWEEPS_BIRDS ?= figures/epochs-birds
# VGG16 on birds trained for 24 epochs, seeds 0 to 5: the same for the other architecture (question 7)
EPOCH_SWEEPS_BIRDS_VGG16 ?= figures/epochs-birds-vgg16
# figures/verdicts.png: one bar per dataset, size, other swept setting and architecture (SWEEP[+SWEEP][@NAME=VALUE])
VERDICT_BARS ?= figures/seeds figures/seeds-vgg16 figures/seeds-birds figures/epochs-birds figures/seeds-birds-vgg16 \
	figures/epochs-birds-vgg16 \
	figures/size-birds+figures/size-birds-seeds-128@image_size=128 \
	figures/size-birds-vgg16-128 \
	figures/size-birds+figures/size-birds-seeds@image_size=224 figures/seeds-catsdogs \
	figures/epochs-catsdogs figures/seeds-catsdogs-vgg16 figures/epochs-catsdogs-vgg16 \
	figures/size-catsdogs+figures/size-catsdogs-seeds-128@image_size=128 \
	figures/size-catsdogs-seeds@image_size=224
seed-checks: $(VENV)/.installed
	$(call into,figures/seed_checks.md,$(PY) tools/seed_checks.py $(SEED_SWEEPS))
	$(call into,figures/seed_checks_224.md,$(PY) tools/seed_checks.py --where image_size=224 $(SIZE_SEED_SWEEPS))
	$(call into,figures/seed_checks_224_catsdogs.md,$(PY) tools/seed_checks.py --where image_size=224 $(SIZE_SEED_SWEEPS_CATSDOGS))
	$(call into,figures/seed_checks_128.md,$(PY) tools/seed_checks.py --where image_size=128 $(SIZE_SEED_SWEEPS_128))
	$(call into,figures/seed_checks_128_catsdogs.md,$(PY) tools/seed_checks.py --where image_size=128 $(SIZE_SEED_SWEEPS_128_CATSDOGS))
	$(call into,figures/seed_checks_128_vgg16.md,$(PY) tools/seed_checks.py --where image_size=128 $(SIZE_SEED_SWEEPS_128_VGG16))
	$(call into,figures/seed_checks_machine_vgg16.md,$(PY) tools/seed_checks.py $(MACHINE_SWEEPS_VGG16))
	$(call into,figures/seed_checks_epochs_catsdogs_vgg16.md,$(PY) tools/seed_checks.py $(EPOCH_SWEEPS_CATSDOGS_VGG16))
	$(call into,figures/seed_checks_epochs_catsdogs.md,$(PY) tools/seed_checks.py $(EPOCH_SWEEPS_CATSDOGS))
	$(call into,figures/seed_checks_epochs_birds.md,$(PY) tools/seed_checks.py $(EPOCH_SWEEPS_BIRDS))
	$(call into,figures/seed_checks_epochs_birds_vgg16.md,$(PY) tools/seed_checks.py $(EPOCH_SWEEPS_BIRDS_VGG16))
	cat figures/seed_checks.md figures/seed_checks_224.md figures/seed_checks_224_catsdogs.md figures/seed_checks_128*.md \
		figures/seed_checks_machine_vgg16.md figures/seed_checks_epochs_catsdogs_vgg16.md figures/seed_checks_epochs_catsdogs.md \
		figures/seed_checks_epochs_birds.md figures/seed_checks_epochs_birds_vgg16.md
	$(PY) tools/verdict_figure.py --out figures/verdicts.png $(VERDICT_BARS)

# Where RC < 1 fails under 10%-of-max hulls (question 7): RC = 1 by how much of the image the original's
# hull covers, 8 epochs against 24, from the sweeps' run folders (runs/, not committed: run the sweeps
# here first; their commands are in the README)
RC_TIES_SWEEPS ?= seeds-birds-rerun epochs-birds machine-birds-vgg16 epochs-birds-vgg16 \
	seeds-catsdogs-rerun epochs-catsdogs seeds-catsdogs-vgg16 epochs-catsdogs-vgg16
rc-ties: $(VENV)/.installed
	$(call into,figures/rc_ties.md,$(PY) tools/rc_ties.py $(RC_TIES_SWEEPS))
	cat figures/rc_ties.md

# The yardstick for "same test accuracy, within 1 point" (#9): how far the seed alone moves it.
# bf16 is emulated, and slow, on CPUs without native bf16: SPREAD_VARIANTS="small-maps plain-convs" there.
SPREAD_SEEDS ?= 0 1 2 3 4 5 6 7 8 9
SPREAD_VARIANTS ?= small-maps plain-convs bf16
accuracy-spread: $(VENV)/.installed
	mkdir -p figures/accuracy-spread
	for pack in cub_warbler_sparrow catsdogs; do \
	  $(call into,figures/accuracy-spread/$$pack.md,$(PY) tools/accuracy_spread.py --profile cpu --arch resnet18 \
	    --dataset folder --data-dir ../shared/data/$$pack --seeds $(SPREAD_SEEDS) --variants $(SPREAD_VARIANTS)); \
	  cat figures/accuracy-spread/$$pack.md; \
	done
