# Thin wrapper: every target installs what it needs first (uv from PyPI, the locked Python
# dependencies, the pinned CDK CLI), so each works on a fresh clone.
# Looked up on first use (and then kept), so `make clean` never installs uv just to delete files.
UV = $(or $(_uv),$(eval _uv := $(shell scripts/ensure-uv))$(_uv))
RUN = $(UV) run --frozen
# Offline, quiet CDK CLI; Node 20's end-of-life banner is noise here.
export CDK_DISABLE_CLI_TELEMETRY=true
export CDK_DISABLE_VERSION_CHECK=true
export AWS_EC2_METADATA_DISABLED=true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
CDK := npx --no-install cdk

.PHONY: install lint typecheck test test-unit test-integration test-infra synth demo demo-scaling up down bench bench-smoke deploy-rehearsal clean function-requirements

install: .venv/.synced node_modules/.installed tools/checkov/.venv/.synced

.venv/.synced: pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $@

# checkov pins an old boto3: its own locked environment, used by tests/infra/test_validators.py.
tools/checkov/.venv/.synced: tools/checkov/pyproject.toml tools/checkov/uv.lock
	$(UV) sync --frozen --project tools/checkov
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install
	$(RUN) mypy

test-unit: install
	$(RUN) pytest tests/unit

test-integration: install
	$(RUN) pytest tests/integration

test-infra: install
	$(RUN) pytest tests/infra

# The whole suite: what CI runs (.ci/run) and what the README's quick start shows.
# Three workers on two cores: most integration tests wait on loopback servers and endpoint latency, not
# CPU; --dist loadfile keeps each file's module fixtures (a local stack, a benchmark smoke run) on one worker.
test: install lint typecheck
	$(RUN) pytest -n 3 --dist loadfile --cov --cov-report=term
	$(CDK) synth --no-notices -q

# The whole pipeline on the embedded local stack: a mixed workload with faults, then a summary.
demo: install
	$(RUN) python -m sqs_sagemaker_invoker.local demo

# A burst at an endpoint with no copies: the local autoscaler scales it out and back to zero (about a minute).
demo-scaling: install
	$(RUN) python -m sqs_sagemaker_invoker.local demo --scenario scaling

# The local stack for manual use (`invoker --local ...`); `make down` stops a detached one.
up: install
	$(RUN) python -m sqs_sagemaker_invoker.local up

down: install
	$(RUN) python -m sqs_sagemaker_invoker.local down

synth: install
	$(CDK) synth --no-notices -q

# cdk bootstrap + deploy + API checks + destroy of the real app against a moto server on 127.0.0.1.
# The function's pins shipped inside the package (so an installed construct bundles them): run after
# changing uv.lock; tests/infra/test_bundling.py fails while they differ.
function-requirements: install
	$(RUN) python -m sqs_sagemaker_invoker.infra.bundling

deploy-rehearsal: install
	scripts/deploy-rehearsal

# Side-by-side benchmarks (bench/results/RESULTS.md and charts; about 7 minutes on 2 cores).
bench: install
	$(RUN) python -m bench

bench-smoke: install
	$(RUN) python -m bench --smoke

clean:
	rm -rf .venv tools/checkov/.venv node_modules cdk.out .tools .local-stack .mypy_cache .ruff_cache .pytest_cache .coverage
