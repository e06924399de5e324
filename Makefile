# One entry point for people and CI: install, tools, demo, test, lint.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?=

.PHONY: help install system-deps deps tools tools-optional ci-local demo test test-unit test-integration lint lint-ci fmt bench doctor clean

help:
	@echo "make install          Python package + dev dependencies (editable)"
	@echo "make system-deps      Debian packages the test bed needs (docker-registry, skopeo, umoci, rsync, chromium)"
	@echo "make tools            build/install the pinned cosign, syft, grype, trivy (cached by version)"
	@echo "make demo             local registry + demo images + the release, summary printed"
	@echo "make test             the whole test suite (unit + integration with the real tools)"
	@echo "make lint             ruff + mypy --strict, then lint-ci"
	@echo "make lint-ci          CI files: action.yml/component in step, check-jsonschema, actionlint, zizmor, hadolint"

install:
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]'

system-deps:
	@missing=""; for b in docker-registry skopeo umoci openssl rsync chromium; do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry skopeo umoci openssl rsync chromium >/dev/null; \
	fi

tools:
	$(PYTHON) -m sc_ci.tools.installer

# Everything the demo and the tests need on a fresh machine (each step is quick when already done).
deps: system-deps install tools-optional ci-local

# gitlab-ci-local (npm, versions and integrity hashes in tools/ci-local/package-lock.json): runs the GitLab
# examples in tests/integration/test_ci_examples.py. Reinstalled only when the lock file changes.
ci-local: tools/ci-local/node_modules/.installed
tools/ci-local/node_modules/.installed: tools/ci-local/package-lock.json
	cd tools/ci-local && npm ci --no-audit --no-fund --silent
	touch $@

tools-optional:
	$(PYTHON) -m sc_ci.tools.installer --with-optional

demo: deps
	$(PYTHON) -m sc_ci demo

test: deps
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

test-unit:
	$(PYTHON) -m pytest -q -m "not integration" $(PYTEST_ARGS)

test-integration: deps
	$(PYTHON) -m pytest -q -m integration $(PYTEST_ARGS)

lint: lint-ci
	$(PYTHON) -m ruff check sc_ci testbed tests tools/lint $(wildcard benchmarks)
	$(PYTHON) -m mypy

# Installs its own linters (pinned, cached): pip packages into $(PYTHON)'s environment, actionlint via go install.
lint-ci:
	$(PYTHON) tools/lint/lint_ci.py

fmt:
	$(PYTHON) -m ruff check --fix sc_ci tests $(wildcard benchmarks)

bench:
	for b in benchmarks/*.py; do PYTHONPATH=. $(PYTHON) $$b || exit 1; done

doctor:
	$(PYTHON) -m sc_ci doctor

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The image, built and tested without a Docker engine (buildah, chroot isolation; docs/image.md).
.PHONY: image image-test
IMAGE_TEST_ARGS ?=

# SC_CI_IMAGE_PLATFORM=linux/arm64 builds (and tests) the arm64 image here under qemu (docs/image.md).
ARM64_DEPS = $(if $(filter linux/arm64,$(SC_CI_IMAGE_PLATFORM)),--arm64)

image:
	bash tools/image/deps.sh $(ARM64_DEPS)
	bash tools/image/build.sh

# Builds the image (cached layers, the host's Go caches: fast after `make tools`), runs it as the GitHub
# runner runs a container action, the demo release inside it, and prints build time and size.
image-test:
	bash tools/image/deps.sh $(ARM64_DEPS)
	SC_CI_IMAGE_TEST=1 $(PYTHON) -m pytest -q -s -p no:cacheprovider tests/image $(IMAGE_TEST_ARGS)
