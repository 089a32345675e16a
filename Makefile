# Phasegate: `make serve` (run it) and `make test` (the whole suite) on a fresh machine.
# The machine's python3 is used as-is (no virtualenv): CI runs as root on a throwaway box.

PYTHON ?= python3
PIP := $(PYTHON) -m pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 5000
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-m 'not browser'" (the suite runs on 2 workers: pytest-xdist).
PYTEST_ARGS ?=
CHROMIUM ?= /usr/bin/chromium

# Console scripts land in the interpreter's scripts directory (or ~/.local/bin for a user
# install), which need not be on PATH: pyenv, for one, only exposes them after `pyenv rehash`.
SCRIPTS_DIRS := $(shell $(PYTHON) -c 'import os, sysconfig; print(sysconfig.get_path("scripts") + ":" + sysconfig.get_path("scripts", os.name + "_user"))' 2>/dev/null)
ifneq ($(SCRIPTS_DIRS),)
export PATH := $(SCRIPTS_DIRS):$(PATH)
endif

# Root needs no sudo; anyone else gets a non-interactive sudo, which fails instead of asking.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

.PHONY: help install install-test assets serve test bench chromium

help:
	@echo "make serve   install, migrate, deploy processes/, create demo users, serve on http://$(HOST):$(PORT)"
	@echo "make test    install with test extras (and Debian chromium if missing), run the whole suite"
	@echo "make bench   quick engine and API benchmarks"

install:
	$(PIP) install --quiet -e .

# Browser libraries (bpmn-js for process diagrams, htmx for partial page updates, swagger-ui for /api/v1/docs) from the npm registry, pinned by
# web/frontend/package-lock.json, copied into web/static/vendor (not committed).
VENDOR := web/static/vendor/bpmn-js
assets:
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix web/frontend --no-audit --no-fund --silent && \
		mkdir -p $(VENDOR) && \
		cp web/frontend/node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js $(VENDOR)/ && \
		cp -r web/frontend/node_modules/bpmn-js/dist/assets/. $(VENDOR)/assets/ && \
		mkdir -p web/static/vendor/htmx web/static/vendor/swagger-ui && \
		cp web/frontend/node_modules/htmx.org/dist/htmx.min.js web/static/vendor/htmx/ && \
		cp web/frontend/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
		   web/frontend/node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js \
		   web/frontend/node_modules/swagger-ui-dist/swagger-ui.css web/static/vendor/swagger-ui/ && \
		echo "assets: bpmn-js $$(node -p "require('./web/frontend/node_modules/bpmn-js/package.json').version") in $(VENDOR), htmx and swagger-ui in web/static/vendor"; \
	else \
		echo "assets: npm not found - process diagrams will not render (install nodejs and npm)"; \
	fi

install-test:
	$(PIP) install --quiet -e '.[test]'

# The database: $PHASEGATE_DATABASE_URL if set, else ./var/phasegate.sqlite.
serve: export PHASEGATE_DATABASE_URL ?= sqlite:///var/phasegate.sqlite
serve: install assets
	phasegate db upgrade
	phasegate deploy processes/ --user admin
	phasegate demo-users
	phasegate serve --host $(HOST) --port $(PORT)

# Browser tests drive Debian's chromium through playwright (`playwright install` is never
# run). Without chromium they skip, saying why; everything else still runs.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "chromium: $(CHROMIUM)"; \
	elif command -v apt-get >/dev/null 2>&1 && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then \
		echo "chromium: installed $$($(CHROMIUM) --version 2>/dev/null)"; \
	else \
		echo "chromium: could not install Debian's chromium - browser tests will skip"; \
	fi

test: export PHASEGATE_CHROMIUM ?= $(CHROMIUM)
test: install-test assets chromium
	$(PYTHON) -m pytest -n 2 $(PYTEST_ARGS)

bench: install
	$(PYTHON) bench/engine.py --quick
	$(PYTHON) bench/api.py --quick
