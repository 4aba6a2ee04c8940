# fuseforge: `make demo` and `make test` set everything up on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CUDA build of PyTorch, so that the generated CUDA extensions compile and link without a GPU.
TORCH ?= torch==2.14.1
# On a GPU machine that already has PyTorch (the device machines do): no venv needed.
GPU_PY ?= python3

.PHONY: setup demo test gpu-test gpu-bench clean

$(BIN)/.ready: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev,plot]'
	touch $@

setup: $(BIN)/.ready

demo: setup
	$(BIN)/fuseforge demo

# Two test processes (pytest-xdist), each test file in one of them (its module fixtures built once):
# the run is mostly extension builds, one compiler at a time each.
TEST_JOBS ?= 2
test: setup
	$(BIN)/python -m pytest -q -m "not gpu" -n $(TEST_JOBS) --dist loadfile

gpu-test:
	PYTHONPATH=src $(GPU_PY) -m pytest -q -m gpu

gpu-bench:
	PYTHONPATH=src $(GPU_PY) scripts/bench_example.py
	PYTHONPATH=src $(GPU_PY) scripts/bench_rows.py

clean:
	rm -rf $(VENV) out .pytest_cache
