# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test tree typecheck docs-build docs test-gpu gpu-check bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m activevision demo --data-dir tests/data/mnist --out out/demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory docs-build
	$(PY) -m pytest -q

# The installed layout (activevision.envs is envs/, activevision.agents is agents/), which an editable install hides
# from mypy and from the API reference's reader: a tree of links in that layout, made anew each run.
TREE := .package-tree
tree: $(STAMP)
	rm -rf $(TREE) && mkdir -p $(TREE)/activevision
	ln -s $(CURDIR)/activevision/* $(TREE)/activevision/
	ln -s $(CURDIR)/envs $(CURDIR)/agents $(TREE)/activevision/

typecheck: tree
	cd $(TREE) && $(CURDIR)/$(PY) -m mypy --config-file $(CURDIR)/pyproject.toml --cache-dir $(CURDIR)/.mypy_cache \
		-p activevision

# The documentation site (mkdocs.yml, docs/): built strictly in `make test`, so a broken link or reference fails;
# `make docs` serves it at http://127.0.0.1:8000.
docs-build: tree
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet --site-dir site

docs: tree
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve

# On a machine with a GPU: every device-taking test on CUDA, then every GPU figure (benchmarks/gpu.py).
test-gpu: $(STAMP)
	$(PY) -m pytest -q --device cuda

gpu-check: $(STAMP)
	$(PY) benchmarks/gpu.py --device cuda

bench: $(STAMP)
	$(PY) benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) out *.egg-info $(TREE) .mypy_cache site
