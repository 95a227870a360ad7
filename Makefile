# The two commands of the README: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU wheel of torch on a laptop; on a GPU cluster set TORCH_SPEC to the CUDA build you want.
TORCH_SPEC ?= torch==2.13.0
SLURM_STATE ?= /tmp/commonweights-slurm

.PHONY: install demo test lint slurm-up slurm-down clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py data_governance/_speedups.c
	test -x $(PY) || python3 -m venv $(VENV)
	# The compiled fast path (setup.py) needs a C compiler and Python's headers: Debian's, if missing.
	command -v cc >/dev/null && $(PY) -c 'import os, sysconfig as s; os.stat(s.get_paths()["include"] + "/Python.h")' \
		|| (apt-get update -q && apt-get install -y -q --no-install-recommends gcc libc6-dev python3-dev)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/commonweights run configs/tiny.yaml

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy commonweights data_governance pipelines training eval slurm

slurm-up:
	bash slurm/cluster/install.sh
	bash slurm/cluster/start.sh $(SLURM_STATE)

slurm-down:
	bash slurm/cluster/stop.sh $(SLURM_STATE)

# Lint, then the whole suite against a local Slurm cluster that is started here and always stopped;
# Chromium (Debian's) renders the report pages in the browser tests.
test: install lint
	bash eval/install_chromium.sh
	$(MAKE) slurm-up
	status=0; $(PY) -m pytest || status=$$?; $(MAKE) slurm-down; exit $$status

clean:
	rm -rf runs .pytest_cache
