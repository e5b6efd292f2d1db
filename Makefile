# Every target installs what it needs from nothing: Debian packages, then a virtual environment.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all deps test unit lint demo bench fuzz clean

all: test

$(STAMP): pyproject.toml devtools/system-deps.sh
	sh devtools/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m compileall -q dockyard
	touch $@

deps: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest tests/unit tests/golden

lint: $(STAMP)
	$(VENV)/bin/ruff check dockyard tests devtools bench
	$(VENV)/bin/ruff format --check dockyard tests devtools bench
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(PY) -m devtools.demo

# The spec fuzzer at length (make test runs 1,000 examples): prints the count and the failures.
fuzz: $(STAMP)
	DOCKYARD_FUZZ_EXAMPLES=10000 $(PY) -m pytest tests/unit/test_spec_fuzz.py -q -s

bench: $(STAMP)
	$(PY) -m compileall -q dockyard devtools bench
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
