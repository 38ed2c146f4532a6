# Every target builds .venv on first use (Python >= 3.11), always through constraints.txt so that
# pip never swaps the CPU torch for a CUDA build.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.snnlab-installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast lab venv clean handouts book gpu-check

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "snnlab needs Python >= 3.11 (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/snnlab run

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The unit tests without notebook executions and subprocess-heavy tests: under 2 minutes on 2 cores.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m "not notebook and not slow" $(PYTEST_ARGS)

# Exports the executed copies of `make demo` (build/notebooks); runs only missing or stale ones first,
# two at once (HANDOUT_ARGS="-j 1" for one).
HANDOUT_ARGS ?= -j 2
handouts: $(STAMP)
	$(BIN)/snnlab handout --executed build/notebooks --run-stale --to html pdf --version student instructor $(HANDOUT_ARGS)

# The course website in build/book/html (open index.html, or copy the folder to any static host).
# Reuses the executed notebooks of `make demo` (build/notebooks); runs only missing or stale ones.
# Needs Chromium for the student PDFs (BOOK_ARGS="-j 2 --no-pdf" without); no Node.js, no network.
# Two missing notebooks execute at once (BOOK_ARGS="-j 1" for one): 9 min on a fresh clone with 2 cores.
BOOK_ARGS ?= -j 2
book: $(STAMP)
	$(BIN)/snnlab book $(BOOK_ARGS)

# Not through .venv: a GPU machine brings its own CUDA torch, which the venv's pinned CPU torch would
# replace. Give the Python that has it (make gpu-check PYTHON=...); the script names what else is missing.
GPU_CHECK_ARGS ?=
gpu-check:
	$(PYTHON) scripts/gpu_check.py $(GPU_CHECK_ARGS)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf build $(VENV)
