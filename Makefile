# Both `make run` and `make test` build .venv from a bare Python 3.11 on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

.PHONY: run test lint format bench sandbox clean lock messages settings-doc screenshots

# What `make run` runs on is what the Docker image runs on: every dependency at the version and hash
# requirements.lock pins, then the bot itself with nothing resolved again (--no-deps).
$(RUN_STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# The development tools (pytest, ruff, mypy, ...) on top, with the bot's own dependencies held at the
# lock's versions (pip refuses hashes in a constraints file, so they are left out of this copy).
$(DEV_STAMP): $(RUN_STAMP)
	sed -n 's/^\([A-Za-z0-9_.-]*==[^ ]*\).*/\1/p' requirements.lock > $(VENV)/lock-constraints.txt
	$(BIN)/python -m pip install --quiet -c $(VENV)/lock-constraints.txt -e '.[dev]'
	touch $@

run: $(RUN_STAMP)
	$(BIN)/python -m bot

sandbox: $(RUN_STAMP)
	$(BIN)/python -m bot sandbox --port 8090

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The web gallery's tests drive Debian's chromium, with CJK fonts for the Chinese pages (docs/web.md).
# Three workers on two cores: half the suite's time is spent waiting (real processes, deadlines, the
# fake Discord), so a third worker fills the idle CPU; measured 360 s with -n 2, 278 s with -n 3.
test: lint
	@test -x /usr/bin/chromium && test -e $(CJK_FONT) || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk)
	$(BIN)/python -m pytest -q -n 3

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(DEV_STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

# Bring bot/locales/*/messages.po up to date with the texts the code and the commands use (README:
# Languages). New texts get an empty translation that the catalog test reports; PRUNE=1 drops unused ones.
messages: $(DEV_STAMP)
	$(BIN)/python -m bot.discord.catalog_tool $(if $(PRUNE),--prune,)

# Write docs/configuration.md and .env.example from the settings declaration (bot/ops/config.py); the
# tests fail when either is out of date.
settings-doc: $(RUN_STAMP)
	$(BIN)/python -m bot.ops.settings_doc

# Re-pin requirements.lock (used by the Dockerfile) after changing pyproject's dependencies.
# The tests check that the lock still satisfies pyproject.toml.
lock:
	test -x .lock-venv/bin/pip-compile || ($(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet pip-tools)
	.lock-venv/bin/pip-compile --quiet --allow-unsafe --generate-hashes --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .lock-venv .pytest_cache .mypy_cache .ruff_cache

# The README's screenshots of the web gallery (docs/web.md), taken with the tests' fixtures (fake Discord,
# seeded store, the gallery's server) and the same chromium; they are committed, so run it after a change
# to the pages. (Tests never write tracked files.)
screenshots: $(DEV_STAMP)
	@test -x /usr/bin/chromium && test -e $(CJK_FONT) || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk)
	$(BIN)/python -m tests.make_screenshots docs/screenshots
