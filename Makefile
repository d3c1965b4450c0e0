# Filegate: `make run` to see the pipeline work locally, `make test` to run every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest

.DEFAULT_GOAL := help
.PHONY: help setup run stop status test test-unit test-dags test-integration lint bench clean lambda-package lambda-verify fuzz screenshots chaos

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv/ with Airflow, the library and the local stack (PyPI only)

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml infra/local/setup_venv.sh
	PYTHON=$(PYTHON) bash infra/local/setup_venv.sh

run: setup ## start the local stack + Airflow, process the sample files, print a summary (stack stays up)
	$(BIN)/filegate-stack start
	$(BIN)/python -m filegate_stack.samples

stop: ## stop the local stack; no process is left behind
	@if [ -x $(BIN)/filegate-stack ]; then $(BIN)/filegate-stack stop; else echo "nothing to stop"; fi

status: setup ## the stack's components and every file's status
	$(BIN)/filegate-stack status
	$(BIN)/filegate status

test: setup tools ## every test: lint, unit, DAG policy, integration, infra (cfn-lint, checkov, bundle, deploy)
	$(MAKE) lint
	$(PYTEST) tests

test-unit: setup ## library tests, no services
	$(PYTEST) tests/unit

test-dags: setup ## DAG integrity and policy
	$(PYTEST) tests/dags

test-integration: setup ## tests against a local stack started on free ports
	$(PYTEST) tests/integration

FUZZ_SECONDS ?= 600
FILEGATE_HOSTILE_SCALE ?= 256
fuzz: setup ## fuzz the readers for FUZZ_SECONDS (600) and run the hostile corpus at FILEGATE_HOSTILE_SCALE (256: 1 GiB lines)
	FILEGATE_FUZZ_SECONDS=$(FUZZ_SECONDS) $(PYTEST) tests/hostile/test_hostile_fuzz.py -q; fuzzed=$$?; \
	FILEGATE_HOSTILE_SCALE=$(FILEGATE_HOSTILE_SCALE) $(PYTEST) tests/hostile/test_hostile_corpus.py -q; \
	corpus=$$?; exit $$(( fuzzed || corpus ))

FILEGATE_CHAOS_FILES ?= 10000
chaos: setup ## chaos run: FILEGATE_CHAOS_FILES (10000) files over 4 feeds under faults, then the auditor (docs/chaos.md)
	FILEGATE_CHAOS_FILES=$(FILEGATE_CHAOS_FILES) $(BIN)/python tests/chaos/harness.py

screenshots: setup ## run the browser test (needs Debian's chromium) and refresh docs/images/ (overview, a file, the API docs)
	FILEGATE_SCREENSHOTS=1 $(PYTEST) tests/e2e/test_browser.py -q

lint: setup ## ruff, including Airflow's AIR rules
	$(BIN)/ruff check .

bench: setup ## benchmarks: one table, each figure against its floor measured in the same run
	$(BIN)/python bench/run.py

lambda-package: setup ## build build/lambda/filegate-lambda.zip (python3.12 x86_64 wheels from PyPI) and report its size
	$(BIN)/python infra/lambda/build.py

lambda-verify: setup ## lambda-package, then run the handlers from the same bundle built for this Python
	$(BIN)/python infra/lambda/build.py --verify

clean: stop ## remove local state (.filegate/) but keep .venv/
	rm -rf .filegate

# ---- shipping to AWS (issue 8): infra/aws (CloudFormation), infra/mwaa (bundle + deploy), .venv-tools (linters)
TOOLS := .venv-tools
DEPLOY := PYTHONPATH=infra/mwaa $(BIN)/python -m filegate_deploy
MWAA_BUCKET ?=
MWAA_ENV ?= filegate
.PHONY: tools bundle mwaa-check deploy template infra-lint

tools: $(TOOLS)/.installed ## cfn-lint + checkov in .venv-tools/ (apart from .venv: they pin an older boto3)

$(TOOLS)/.installed: requirements-tools.txt constraints-tools.txt infra/aws/tools_venv.sh
	PYTHON=$(PYTHON) bash infra/aws/tools_venv.sh

bundle: setup ## build the MWAA bundle in build/mwaa/ (dags/ with the contracts, plugins.zip with the library, requirements, startup.sh)
	$(DEPLOY) build

mwaa-check: setup ## run the built bundle as MWAA 3.3.1 runs it (image layout, fresh venv on MWAA's versions, no Docker)
	$(PYTEST) tests/infra/test_bundle_imports.py tests/infra/test_mwaa_runtime.py

deploy: bundle ## sync build/mwaa/ to MWAA_BUCKET, update MWAA_ENV when needed (DRY_RUN=1 prints the plan only)
	@test -n "$(MWAA_BUCKET)" || { echo "set MWAA_BUCKET=<stack output SourceBucketName>"; exit 2; }
	$(DEPLOY) deploy --bucket $(MWAA_BUCKET) $(if $(MWAA_ENV),--environment $(MWAA_ENV)) $(if $(DRY_RUN),--dry-run)

template: setup ## render build/aws/filegate.yaml: one arrival queue per feed, one function per Lambda handler
	$(DEPLOY) template

infra-lint: tools template ## cfn-lint and checkov on the base and the rendered template
	$(TOOLS)/bin/cfn-lint infra/aws/filegate.yaml build/aws/filegate.yaml
	$(TOOLS)/bin/checkov -f build/aws/filegate.yaml --framework cloudformation --skip-download --compact --quiet
