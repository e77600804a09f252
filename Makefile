# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps .venv from
# pyproject.toml when it is missing, older than pyproject.toml, or when package files were
# added or removed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Parallel test workers (pytest-xdist); CI machines have 2 cores.
JOBS   ?= 2
# The package is installed in setuptools' "strict" editable mode: a tree of links to the
# sources, so that `import systolab` finds the real package from any working directory
# (the default editable finder loses to a folder named `systolab`, e.g. a clone, beside a
# notebook). Links cover the files present at install time, hence the file list below.
PKG_FILES := $(sort $(shell find systolab hdl models sim -type f \( -name '*.py' -o -path 'models/data/*' \) \
               -not -path '*/__pycache__/*' 2>/dev/null))
FILELIST  := $(VENV)/.package-files

.PHONY: demo test test-slow lint bench install clean FORCE

$(FILELIST): FORCE
	@mkdir -p $(VENV)
	@echo '$(PKG_FILES)' | cmp -s - $@ 2>/dev/null || echo '$(PKG_FILES)' > $@

$(STAMP): pyproject.toml $(FILELIST)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "systolab needs Python >= 3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' --config-settings editable_mode=strict
	@touch $@

install: $(STAMP)

# The main job: the decision on its defaults (build or buy, for the default buyer and date),
# then the engineering comparison of the default chip against the GPUs.
demo: $(STAMP)
	$(VENV)/bin/systolab decide --out out/decision
	$(VENV)/bin/systolab compare --out out/demo
	@echo "decision: out/decision/report.html (report.md, decision.json and plots beside it)"
	@echo "comparison: out/demo/report.md (report.html, plots and summary.json beside it)"

lint: $(STAMP)
	$(VENV)/bin/ruff check --quiet .
	cd build/__editable__.systolab-*/ && $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml

test: lint
	$(PY) -m pytest -n $(JOBS)

test-slow: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m slow

bench: $(STAMP)
	$(PY) benchmarks/sim_speed.py

clean:
	rm -rf $(VENV) out build .pytest_cache .mypy_cache
