# Set-up and everyday commands. Each target creates the virtual environment
# (.venv) and installs the project into it on first use, so on a fresh machine
# `make run` and `make test` are all there is to do.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

## Open the window (on the sample catalogue, or ARGS=FOLDER_OR_CATALOGUE).
run: $(VENV)/.installed
	$(PY) app.py $(ARGS)

## Run every test, headless.
test: $(VENV)/.installed
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
