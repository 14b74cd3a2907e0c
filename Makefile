# CNI Lab: every target bootstraps what it needs, starting from a bare Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BACKEND ?= auto
OUT    ?= runs/latest

.PHONY: setup run test lab lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lab]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

run: setup  ## the whole course, headless (exercises solved); executed notebooks + report in $(OUT)
	$(BIN)/labkit run --backend $(BACKEND) --output-dir $(OUT) -p SOLVE_EXERCISES=true

test: setup  ## the full test suite
	$(BIN)/ruff check labkit tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy --strict --follow-imports=silent labkit/policy labkit/model.py labkit/cnis.py
	$(BIN)/python -m pytest -n 2

lab: setup  ## JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks/

bench: setup
	$(BIN)/python benchmarks/policy_engine.py --pods 1000 --policies 500 --json

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
