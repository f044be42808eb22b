# Thin wrappers over documented commands. Everything installs into a local virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The PyTorch wheel to install; override e.g. `make install TORCH=torch` for the newest release.
TORCH ?= torch==2.13.0
PYTEST_WORKERS ?= 2

.PHONY: install run test lint bench paper paper-cpu docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: install
	$(BIN)/pinnbench run $(ARGS)

test: install
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The documentation site (docs/, Sphinx + MyST): warnings are errors, every cross-reference must resolve
# (-n), then the links between pages and into the repository are checked. Opens at docs/_build/html/index.html.
docs: install
	$(BIN)/python -m sphinx -W -n --keep-going -b html docs docs/_build/html
	$(BIN)/python scripts/check_links.py

# Time iterations of the four problems at paper size, ours against the straightforward implementation,
# and print one ratio table (records in bench.json). threads=1: on a 2-core machine shared with other
# work, two OpenMP threads wait for each other at every operation; BENCH_ARGS=threads=0 uses PyTorch's default.
BENCH_ARGS ?= threads=1
bench: install
	$(BIN)/pinnbench bench 'bench.problems=[burgers,schrodinger,kovasznay,beltrami]' $(BENCH_ARGS)

# The paper's study (both sweeps, then the report into results/); ARGS: Hydra overrides for the sweeps.
paper: install
	PINNBENCH=$(BIN)/pinnbench bash scripts/paper.sh paper $(ARGS)

paper-cpu: install
	PINNBENCH=$(BIN)/pinnbench bash scripts/paper.sh cpu $(ARGS)

clean:
	rm -rf $(VENV) runs multirun outputs reports docs/_build
