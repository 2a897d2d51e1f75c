# rendergate: `make run` starts the local stack, `make test` runs every check CI runs.
SHELL := /bin/bash
VENV ?= .venv
CHECKOV_VENV ?= .venv-checkov
PY := $(VENV)/bin/python
# The RunPod worker's own virtualenv: the runpod SDK pins click below what aws-sam-cli needs. The tests
# run infra/runpod-worker/handler.py in it, under the SDK release named here.
WORKER_VENV := .venv-worker
RUNPOD_SDK := runpod==1.12.0
export PYTHONPATH := layers/common/python:infra:tests
export SAM_CLI_TELEMETRY := 0
# sam build needs python3.12 on PATH (the Lambda runtime); take pyenv's if the system has none.
PY312_BIN := $(shell python3.12 --version >/dev/null 2>&1 || ls -d $$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.12*/bin 2>/dev/null | tail -n 1)
export PATH := $(if $(PY312_BIN),$(PY312_BIN):,)$(PATH)

.PHONY: worker-venv run demo replay test lint checkov unit integration contract e2e bench build validate browser clean seed-workflows

$(VENV)/.installed: requirements-dev.txt layers/common/requirements.txt layers/imaging/requirements.txt layers/media/requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(WORKER_VENV)/.installed: infra/runpod-worker/requirements.txt
	test -x $(WORKER_VENV)/bin/python || python3 -m venv $(WORKER_VENV)
	$(WORKER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(WORKER_VENV)/bin/python -m pip install --quiet -r infra/runpod-worker/requirements.txt "$(RUNPOD_SDK)"
	touch $@

worker-venv: $(WORKER_VENV)/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m devstack

demo: $(VENV)/.installed
	$(PY) -m devstack.demo $(if $(RENDER),--render ,)$(if $(COMFY),--comfy ,)$(if $(ENTITY),--entity ,)$(if $(APPROVE),--approve,)$(if $(REJECT),--reject,)

# publish one approval again from its audit row: make replay EVENT=<publish_event_id>
# (a deployed stack: make replay EVENT=<id> API_URL=<its ApiUrl output> API_KEY=<key>)
replay: $(VENV)/.installed
	$(PY) -m devstack.replay $(EVENT) $(if $(API_URL),--api-url $(API_URL) --api-key $(API_KEY),)

# the workflow registry of a deployed stack (the local stack seeds its own): make seed-workflows STACK=rendergate-prod
STACK ?= rendergate-dev
seed-workflows: $(VENV)/.installed
	$(PY) -m workflows.seed --stack-name $(STACK)

test: $(VENV)/.installed $(WORKER_VENV)/.installed browser lint checkov
	$(PY) -m pytest

unit: $(VENV)/.installed $(WORKER_VENV)/.installed
	$(PY) -m pytest tests/unit

integration: $(VENV)/.installed $(WORKER_VENV)/.installed
	$(PY) -m pytest tests/integration

contract: $(VENV)/.installed
	$(PY) -m pytest tests/contract

e2e: $(VENV)/.installed browser
	$(PY) -m pytest tests/e2e

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/common/python/rendergate infra/devstack infra/workflows infra/runpod-worker/handler.py

# template.yaml against checkov's AWS checks; every check it skips is skipped in the template with a reason.
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --quiet --compact

# Debian's chromium for the review-page tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "chromium missing: the browser tests will be skipped"; }

bench: $(VENV)/.installed
	$(PY) bench/cold_start.py

validate: $(VENV)/.installed
	$(VENV)/bin/sam validate --lint

build: $(VENV)/.installed
	$(VENV)/bin/sam build

clean:
	rm -rf .aws-sam .devstack .pytest_cache .mypy_cache .ruff_cache $(WORKER_VENV) $(CHECKOV_VENV)
