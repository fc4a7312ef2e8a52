# Setup and the two main commands. `make train` and `make test` each install
# everything they need into .venv from this repository's own files first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The pinned torch. On this project's machines pip finds the CPU build of
# 2.13.0 on local disk; elsewhere PyPI serves a CUDA build of several GB, and
# `make ... TORCH_INDEX=https://download.pytorch.org/whl/cpu` gets the CPU build.
TORCH := torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed

.PHONY: install train test bench clean

$(STAMP): pyproject.toml plugins_example/tnn-cells-rgc/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[train,data,test]" -e ./plugins_example/tnn-cells-rgc
	touch $(STAMP)

install: $(STAMP)

# The main job: train a recurrent TNN on the 5,000 bundled MNIST digits.
train: install
	$(BIN)/tnn train configs/train_mnist.yaml

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/unroll_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
