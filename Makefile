# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps .venv from
# pyproject.toml when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Parallel test workers (pytest-xdist); CI machines have 2 cores.
JOBS   ?= 2

.PHONY: demo test test-slow bench install clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "systolab needs Python >= 3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

install: $(STAMP)

# The main job: the default custom chip against the default GPUs on the default workloads.
demo: $(STAMP)
	$(VENV)/bin/systolab compare --out out/demo
	@echo "report: out/demo/report.md (plots and summary.json beside it)"

test: $(STAMP)
	$(VENV)/bin/ruff check --select F,E9 --quiet .
	$(PY) -m pytest -n $(JOBS)

test-slow: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m slow

bench: $(STAMP)
	$(PY) benchmarks/sim_speed.py

clean:
	rm -rf $(VENV) out build .pytest_cache
