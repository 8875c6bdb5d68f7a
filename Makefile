# The README's two commands: `make demo` and `make test`. Each does its own set-up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OPSBOOK := $(VENV)/bin/opsbook
STAMP := $(VENV)/.installed-stamp
export PATH := $(abspath $(VENV))/bin:$(PATH)
REPORTS ?= reports
PYTEST_ARGS ?= --durations=30

.PHONY: help install toolchain toolchain-kops browser demo test lint typecheck bench screenshots clean sandbox-up sandbox-down

help:
	@echo "make demo      set up, start the sandbox, run the runbooks, write HTML reports under $(REPORTS)/"
	@echo "make test      set up and run the whole suite against the sandbox (real kube-apiserver + moto)"
	@echo "make lint      ruff + mypy --strict + import-linter (the layers point one way)"
	@echo "make bench     benchmarks, side-by-side ratios (see docs/benchmarks.md)"
	@echo "make screenshots  README pictures in docs/img/ from real sandbox runs (Debian's chromium)"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need python3 >= 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

toolchain: $(STAMP)
	$(OPSBOOK) toolchain

# kops and its amd64 node binaries (arm64 gets stand-ins; `opsbook toolchain --kops --arm64` builds them, and
# create-cluster does when a plan has arm64 instance types): only the suite and the kops provider need them.
# `opsbook toolchain --kops --list` says what would be built, with estimates.
toolchain-kops: $(STAMP)
	$(OPSBOOK) toolchain --kops

# The browser tests drive Debian's chromium (Playwright with executable_path; no browser download).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests (once)"
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium

browser: $(CHROMIUM)

demo: toolchain
	$(PY) -m opsbook.cli.demo --reports $(REPORTS)

# lint first: seconds (mypy's cache), and a broken layer contract fails before 30 min of tests
test: lint toolchain-kops browser
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check lib tests benches
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: toolchain
	$(PY) benches/run.py

screenshots: toolchain browser
	$(PY) tests/screenshots.py --out docs/img

sandbox-up: toolchain
	$(OPSBOOK) sandbox up

sandbox-down: $(STAMP)
	$(OPSBOOK) sandbox down

clean:
	rm -rf $(VENV) reports .pytest_cache .mypy_cache .ruff_cache
