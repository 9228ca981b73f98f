# videojobs: every command a developer or CI needs. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
VENDOR ?=
PAGE   ?=
SPEC_EDITED ?=
PYTEST_ARGS ?=
export VENDOR PAGE  # update-spec's recipe reads them from its environment: a page name is never pasted into a shell

.DEFAULT_GOAL := help
TASK   ?=
.PHONY: help install demo test lint generate check-generated update-spec record record-live bench bench-smoke sandbox celery-demo readme-terminal clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "videojobs needs Python 3.11 or newer (set PYTHON=...)")'
	@echo "installing videojobs and its dev tools into $(VENV) (about 40 s the first time; again only when pyproject.toml changes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install videojobs with the dev tools (only when pyproject.toml changed)

demo: $(STAMP) ## the main job, offline: a dozen sandbox jobs across all five vendors, live (exit 0: as designed)
	@$(VENV)/bin/videojobs demo

test: $(STAMP) ## the whole suite, offline (pyproject.toml blocks the network), replaying the cassettes
	@bash scripts/test.sh $(PY) $(PYTEST_ARGS)

lint: $(STAMP) ## ruff on overlay, scripts and tests; mypy --strict on the overlay
	$(VENV)/bin/ruff check overlay scripts tests
	$(VENV)/bin/ruff format --check overlay scripts tests
	$(VENV)/bin/mypy

generate: $(STAMP) ## regenerate generated/ from specs/ (VENDOR=slug for one)
	$(PY) scripts/generate.py $(if $(VENDOR),--vendor $(VENDOR))

check-generated: $(STAMP) ## regenerate into a temp dir and fail, with the diff, on drift
	$(PY) scripts/generate.py --check

update-spec: $(STAMP) ## a vendor changed its page: make update-spec VENDOR=slug PAGE=path [SPEC_EDITED=1]
	@test -n "$$VENDOR" -a -n "$$PAGE" || { echo "usage: make update-spec VENDOR=<slug> PAGE=<saved page> [SPEC_EDITED=1]"; exit 2; }
	$(PY) scripts/update_spec.py "$$VENDOR" "$$PAGE" $(if $(SPEC_EDITED),--spec-edited)

record: $(STAMP) ## start the sandbox under uvicorn and re-record every (sandbox) cassette (VENDOR=slug: its own only)
	$(PY) scripts/record.py $(VENDOR)

record-live: $(STAMP) ## record a real exchange: make record-live VENDOR=slug TASK=id (needs <SLUG>_API_KEY)
	@test -n "$(VENDOR)" -a -n "$(TASK)" || { echo "usage: make record-live VENDOR=<slug> TASK=<task id>"; exit 2; }
	VIDEOJOBS_LIVE="$(VENDOR):$(TASK)" $(PY) -m pytest tests/test_live.py --record-mode=once -p no:randomly -q

bench: $(STAMP) ## the benchmark table (writes bench-results.json)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) scripts/bench.py --update-readme

bench-smoke: $(STAMP) ## the benchmark in miniature (CI: it runs, no figure is checked)
	$(PY) scripts/bench.py --smoke

readme-terminal: $(STAMP) ## rerun the README's terminal examples and paste their real output
	$(PY) scripts/readme_terminal.py

sandbox: $(STAMP) ## serve the sandbox on http://127.0.0.1:8710
	$(VENV)/bin/videojobs sandbox --port 8710

celery-demo: $(STAMP) ## Redis, the sandbox, a Celery worker and four tracked jobs whose callbacks print; stops them all
	@$(PY) examples/celery_demo.py

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
