# CNI Lab: every target bootstraps what it needs, starting from a bare Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BACKEND ?= auto
OUT    ?= runs/latest
# make lab: where JupyterLab listens. Root (a container) needs --allow-root; with no display
# (a server, a container, SSH) there is no browser to open: say where to point one instead.
LAB_IP   ?= 127.0.0.1
LAB_PORT ?= 8888
LAB_DIR  ?= notebooks
LAB_ARGS := --ServerApp.ip=$(LAB_IP) --ServerApp.port=$(LAB_PORT) --ServerApp.port_retries=0 \
            --ServerApp.root_dir=$(LAB_DIR)
ifeq ($(shell id -u),0)
LAB_ARGS += --allow-root
endif
ifeq ($(shell uname -s)$(DISPLAY)$(WAYLAND_DISPLAY),Linux)
LAB_ARGS += --no-browser
endif

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

lab: setup  ## JupyterLab on the notebooks; prints the URL to open
	@echo "make lab: JupyterLab on http://$(LAB_IP):$(LAB_PORT)/lab (open the URL with ?token=... that Jupyter prints below; Ctrl-C stops it)"
	$(BIN)/jupyter lab $(LAB_ARGS)

bench: setup
	$(BIN)/python benchmarks/policy_engine.py --pods 1000 --policies 500 --json

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
