# The two commands a fresh clone needs: `make dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# checkov pins an older boto3 than the project, so it lives in a virtual environment of its own.
CHECKOV := .venv-checkov/bin/checkov
# MiniStack (a second local AWS engine) pins an older botocore too; its Lambda workers run on its
# interpreter, which must be the project's Python 3.11 to load the zip's compiled wheels.
MINISTACK := .venv-ministack/bin/ministack
MINISTACK_PORT ?= 4566
STACK ?= blog-dev
PORT ?= 8000
AWS_PORT ?= 5000
# SPEED_PATCHES=off: moto without its speed patches (emulator/moto_patches.py), e.g. make test
SPEED_PATCHES ?= on
export BLOG_MOTO_SPEED_PATCHES := $(SPEED_PATCHES)

.PHONY: install dev emulator api test lint typecheck unit package chaos bench load deploy-local \
	test-ministack mutants

$(INSTALLED): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(INSTALLED)

install: $(INSTALLED)

$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install --quiet checkov==3.3.30

$(MINISTACK):
	$(PYTHON) -m venv .venv-ministack
	.venv-ministack/bin/python -m pip install --quiet --upgrade pip
	.venv-ministack/bin/python -m pip install --quiet ministack==1.5.33 aws-sam-translator==1.115.0

## make dev: moto + the infra stack + the event-source runner + chalice local, in one terminal.
dev: install
	PORT=$(PORT) AWS_PORT=$(AWS_PORT) $(BIN)/python -m emulator dev

## make emulator / make api: the same, in two terminals.
emulator: install
	AWS_PORT=$(AWS_PORT) $(BIN)/python -m emulator serve

api: install
	AWS_PORT=$(AWS_PORT) PORT=$(PORT) $(BIN)/python -m emulator api

## make test: lint, types and every test (the packaged template's cfn-lint and checkov too).
test: lint typecheck $(CHECKOV) $(MINISTACK)
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint infra/template.yaml

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest tests/unit

## make test-ministack: only the end-to-end lane on the packaged stack deployed into MiniStack.
test-ministack: install $(MINISTACK)
	$(BIN)/python -m pytest tests/ministack

## make package: the deployable CloudFormation template and zip, under build/package.
package: install $(CHECKOV)
	$(BIN)/python -m tools.package
	$(BIN)/cfn-lint build/package/sam.json
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f build/package/sam.json

## make deploy-local: the packaged stack on MiniStack at 127.0.0.1:$(MINISTACK_PORT), until Ctrl+C.
deploy-local: package $(MINISTACK)
	$(BIN)/python -m emulator.deploy_local --port $(MINISTACK_PORT) --stack $(STACK)

## make chaos: the pipeline state machine with 200 examples, then its totals.
chaos: install
	CHAOS_EXAMPLES=200 $(BIN)/python -m pytest -q tests/chaos

## make mutants: mutation testing (mutmut) of the core modules, on demand only; it writes
## docs/mutants-report.md. MUTANTS="functions.archive*" re-runs only the mutants named (globs).
## mutmut keeps its results in mutants/ and re-runs only changed functions: rm -rf mutants for
## a clean run. See docs/testing.md.
MUTANTS ?=
mutants: install
	start=$$(date +%s); nice -n 10 $(BIN)/mutmut run --max-children 2 $(MUTANTS) && \
	$(BIN)/python -m tools.mutants_report --seconds $$(( $$(date +%s) - start ))

## make bench: every benchmark, results under benchmarks/results/.
bench: install
	$(BIN)/python -m benchmarks.run_all

## make load: 60 s of writes through a 20 s query outage, against a running `make dev`.
load: install
	$(BIN)/python -m load.generator --url http://127.0.0.1:$(PORT) --aws-port $(AWS_PORT) \
		--rate 5 --seconds 60 --outage-at 15 --outage-for 20 --outage-mode unsubscribe
