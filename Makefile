# Thin wrapper: every target installs what it needs first (uv from PyPI, the locked Python
# dependencies, the pinned CDK CLI), so each works on a fresh clone.
UV := $(shell scripts/ensure-uv)
RUN := $(UV) run --frozen
export UV

.PHONY: install lint typecheck test test-unit test-integration test-infra synth demo up down bench bench-smoke deploy-rehearsal clean

install: .venv/.synced node_modules/.installed

.venv/.synced: pyproject.toml uv.lock
	$(UV) sync --frozen
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
test: install lint typecheck
	$(RUN) pytest
	npx cdk synth --quiet > /dev/null

synth: install
	npx cdk synth

clean:
	rm -rf .venv node_modules cdk.out .tools .local-stack .mypy_cache .ruff_cache .pytest_cache
