# `make test` and `make demo` set themselves up on a fresh machine: they create .venv with pip
# when it is missing and install the project with the extras they need, and the benchmarks
# (benchmarks/pyproject.toml, a distribution of their own) that `weightport bench` mounts.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml benchmarks/pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: test test-random demo demo-reference setup bench-load fuzz lint clean

$(STAMP): pyproject.toml benchmarks/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install --quiet -e ".[test]" -e ./benchmarks
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite once in a random order (pytest-randomly), to prove no test depends on another's side
# effects. It prints its seed; RANDOM_SEED=N repeats that order.
RANDOM_SEED ?= $(shell od -An -N2 -tu2 /dev/urandom | tr -d ' ')
test-random: $(STAMP)
	$(BIN)/python -m pytest -p randomly -p no:cacheprovider --randomly-seed=$(RANDOM_SEED) $(PYTEST_ARGS)

# The fine-tune baselines: 3 ImageNet sources + scratch, 2 protocols, 3 seeds, into
# benchmarks/results/finetune/<UTC time>/ (DEMO_ARGS to change anything, e.g. DEMO_ARGS="--name mine").
# OMP_WAIT_POLICY=PASSIVE: idle threads sleep instead of spinning (a shared machine); numbers unchanged.
DEMO_ARGS ?=
demo: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m weightport.cli bench finetune $(DEMO_ARGS)

# The committed reference run that the README shows: benchmarks/results/finetune/reference/.
demo-reference: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m weightport.cli bench finetune --name reference --overwrite

# The loading benchmark (benchmarks/results/loading.{md,json}), plan() of 5,000 tensors, `weightport
# inspect` as a whole process, then the README's table (benchmarks/readme_table.py, between its markers).
# (The usual recipes, naive and safetensors' load_file, are left out to fit 3 rounds in ~15 min on 2 cores;
# BENCH_LOAD_ARGS="--approaches ..." adds them.)
BENCH_LOAD_ARGS ?= --formats safetensors pth --approaches timm hf-mixin hand-written weightport \
	weightport-new-file hand-written-uncached weightport-uncached read-bytes meta-build --repeat 3
bench-load: $(STAMP)
	$(BIN)/python benchmarks/loading.py $(BENCH_LOAD_ARGS)
	PYTHONPATH=src $(BIN)/python benchmarks/plan_speed.py
	$(BIN)/python benchmarks/inspect_speed.py --runs 5
	$(BIN)/python benchmarks/readme_table.py

fuzz: $(STAMP)
	PYTHONPATH=src $(BIN)/python scripts/fuzz_formats.py --seconds 300

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff mypy
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy src/weightport

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
