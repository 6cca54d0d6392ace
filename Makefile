# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test typecheck test-gpu gpu-check bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m activevision demo --out out/demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(MAKE) --no-print-directory typecheck
	$(PY) -m pytest -q

# mypy over the installed layout (activevision.envs is envs/, activevision.agents is agents/), which an editable
# install hides from it: a tree of links in that layout, made anew each run.
TYPES := .mypy-tree
typecheck: $(STAMP)
	rm -rf $(TYPES) && mkdir -p $(TYPES)/activevision
	ln -s $(CURDIR)/activevision/* $(TYPES)/activevision/
	ln -s $(CURDIR)/envs $(CURDIR)/agents $(TYPES)/activevision/
	cd $(TYPES) && $(CURDIR)/$(PY) -m mypy --config-file $(CURDIR)/pyproject.toml --cache-dir $(CURDIR)/.mypy_cache \
		-p activevision

# On a machine with a GPU: every device-taking test on CUDA, then every GPU figure (benchmarks/gpu.py).
test-gpu: $(STAMP)
	$(PY) -m pytest -q --device cuda

gpu-check: $(STAMP)
	$(PY) benchmarks/gpu.py --device cuda

bench: $(STAMP)
	$(PY) benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) out *.egg-info $(TYPES) .mypy_cache
