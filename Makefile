# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)
ORT_GPU := $(shell sed -n 's/.*"onnxruntime-gpu==\([0-9.]*\)".*/\1/p' pyproject.toml)

# Use the shared models and sample images when this checkout sits beside them
# (developer machines and CI); elsewhere the defaults in ~/.cache/backdrop are
# used and files are fetched from their upstream addresses.
ifneq ($(wildcard $(SHARED)/models),)
export BACKDROP_MODELS_DIR ?= $(SHARED)/models
endif
ifneq ($(wildcard $(SHARED)/images),)
export BACKDROP_SAMPLES_DIR ?= $(SHARED)/images
export BACKDROP_SHARED ?= $(SHARED)
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install install-gpu demo test test-fast lint unit clean bench bench-quick gpu-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[server,dev]"
	# numba's cache for the matting solver, built once here (about a minute on
	# 2 cores) instead of on the first worker start or the first job.
	$(PY) -c "from worker.pipeline.matting import warm_up; warm_up()"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/backdrop demo --out-dir demo-output

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest --durations=20

# The developer's loop (under 2 minutes): pure functions, the record and the
# steps in-process on the real Redis; no worker processes, no slow optimizations.
test-fast: lint
	$(PY) -m pytest -q -m "not slow and not faults and not load" \
		--ignore=tests/integration --ignore=tests/gateway --ignore=tests/benchmarks \
		--ignore=tests/browser

# A GPU machine: TensorFlow with its CUDA wheels and onnxruntime-gpu (which
# replaces the CPU onnxruntime: both install the same `onnxruntime` package).
install-gpu: install
	$(PY) -m pip install --quiet -e ".[server,dev,gpu]"
	$(PY) -m pip uninstall --quiet -y onnxruntime
	$(PY) -m pip install --quiet --force-reinstall --no-deps "onnxruntime-gpu==$(ORT_GPU)"

# Tests marked gpu, step throughput grid, time to quality, styles per hour,
# painting at full resolution (512 -> 2048 px); on a CPU-only machine one line
# and exit 0.
gpu-check: install
	$(PY) -m benchmarks.gpu_check

bench: install
	$(PY) -m benchmarks.run_all

bench-quick: install
	$(PY) -m benchmarks.run_all --quick

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
