# facelab: `make app` runs the Gradio app on the embedded demo, `make test` runs the test suite.
# Both create .venv with uv (installed with pip if absent) from requirements.lock on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := python3 -m uv
# This workplace keeps the torch/torchvision wheels on disk; elsewhere uv takes them from PyPI.
FIND_LINKS := $(foreach d,/opt/pypi-more/files /opt/pypi/files,$(if $(wildcard $(d)),--find-links $(d),))
PYTEST_ARGS ?=

.PHONY: setup app test lock lint clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock requirements-nodeps.txt
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
	@[ -x $(PY) ] || $(UV) venv -q $(VENV) --python 3.11
	$(UV) pip install -q -p $(PY) $(FIND_LINKS) -r requirements.lock
	$(UV) pip install -q -p $(PY) $(FIND_LINKS) --no-deps -r requirements-nodeps.txt
	$(UV) pip install -q -p $(PY) --no-deps -e .
	@touch $@

app: setup
	$(PY) app.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Re-resolve the pinned set after editing pyproject.toml dependencies.
lock:
	$(UV) pip compile -q pyproject.toml --extra all $(FIND_LINKS) --python-version 3.11 -o requirements.lock

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
