# Every target installs what it needs from nothing: Debian packages, then a virtual environment.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# `make dist`: the wheel, the single-file build and the Ansible collection. The single file is
# a PEX zipapp holding the binary wheels of every CPython in DIST_PYTHONS, so it runs on a host
# that has only one of them (`python3 dist/reconcile.pyz ...`, or the file itself).
DIST        ?= dist
DIST_PYTHONS ?= 311 312 313 314
DIST_ARCH   ?= $(shell uname -m)
COLLECTION  := integrations/ansible/ansible_collections/dockyard/host
FLEET_HOSTS ?= 20

.PHONY: all deps test unit lint sanity demo bench dist fleet-demo fuzz clean

all: test

$(STAMP): pyproject.toml devtools/system-deps.sh
	sh devtools/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m compileall -q dockyard
	touch $@

deps: $(STAMP)

# Two workers, a test file each at a time (`--dist loadfile`: a module's fixtures, `make dist`
# among them, are built once). Most integration tests wait on other programs, so two about
# halve the wall time on a 2-core machine; TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

unit: $(STAMP)
	$(PY) -m pytest tests/unit tests/golden

lint: $(STAMP) sanity
	$(VENV)/bin/ruff check dockyard tests devtools bench integrations
	$(VENV)/bin/ruff format --check dockyard tests devtools bench integrations
	$(VENV)/bin/mypy

# ansible-test sanity on the collection (its first run installs its tools from PyPI, ~3 min)
sanity: $(STAMP)
	$(PY) -m devtools.sanity

demo: $(STAMP)
	$(PY) -m devtools.demo

# The property-based tests at length (make test runs 500 hostile trees, 1,000 specs and 300
# vfs layer chains):
# FUZZ_EXAMPLES each; prints the counts and every failure.
FUZZ_EXAMPLES ?= 10000
fuzz: $(STAMP)
	DOCKYARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -s -p no:cacheprovider \
		--hypothesis-show-statistics tests/unit/test_hostile_fuzz.py tests/unit/test_spec_fuzz.py \
		tests/unit/test_spec_incremental.py tests/unit/test_iptables_committed.py \
		tests/unit/test_vfs_snapshot.py::test_snapshots_equal_the_reference_model

fleet-demo: $(STAMP)
	$(PY) -m devtools.fleet_demo $(FLEET_HOSTS)

dist: $(STAMP)
	mkdir -p $(DIST)
	rm -f $(DIST)/dockyard-*.whl $(DIST)/reconcile.pyz $(DIST)/dockyard-host-*.tar.gz
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir $(DIST) .
	$(VENV)/bin/pex $(DIST)/dockyard-*.whl --console-script reconcile --venv --sh-boot \
	    --python-shebang '/usr/bin/env python3' \
	    $(foreach v,$(DIST_PYTHONS),--platform manylinux2014_$(DIST_ARCH)-cp-$(v)-cp$(v)) \
	    --output-file $(DIST)/reconcile.pyz
	LC_ALL=C.UTF-8 $(VENV)/bin/ansible-galaxy collection build $(COLLECTION) --output-path $(DIST)

# The peers the bench measures dockyard against (pyinfra, ansible-core), in their own
# environment: nothing of theirs in dockyard's, nothing of dockyard's in theirs.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): bench/docker_default/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/docker_default/requirements.txt
	touch $@

# dockyard as users install it (README, "Running it for real": `pip install .`, compiled on
# install, no editable-install hook): the console script the bench times beside the peers.
INSTALLED_VENV  := .venv-installed
INSTALLED_STAMP := $(INSTALLED_VENV)/.installed

$(INSTALLED_STAMP): pyproject.toml $(shell find dockyard -name '*.py')
	$(PYTHON) -m venv $(INSTALLED_VENV)
	$(INSTALLED_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INSTALLED_VENV)/bin/python -m pip install --quiet .
	$(INSTALLED_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall .
	touch $@

bench: $(STAMP) $(BENCH_STAMP) $(INSTALLED_STAMP)
	$(PY) -m compileall -q dockyard devtools bench
	BENCH_PEERS_VENV=$(BENCH_VENV) BENCH_RECONCILE=$(INSTALLED_VENV)/bin/reconcile \
	    $(PY) -m bench.run

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(INSTALLED_VENV) .pytest_cache .mypy_cache .ruff_cache $(DIST)
