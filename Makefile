# Both `make run` and `make test` build .venv from a bare Python 3.11 on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CJK_FONT := /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

.PHONY: run test lint format bench sandbox clean lock messages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot

sandbox: $(STAMP)
	$(BIN)/python -m bot sandbox --port 8090

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The web gallery's tests drive Debian's chromium, with CJK fonts for the Chinese pages (docs/web.md).
test: lint
	@test -x /usr/bin/chromium && test -e $(CJK_FONT) || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk)
	$(BIN)/python -m pytest -q -n 2

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

# Bring bot/locales/*/messages.po up to date with the texts the code and the commands use (README:
# Languages). New texts get an empty translation that the catalog test reports; PRUNE=1 drops unused ones.
messages: $(STAMP)
	$(BIN)/python -m bot.discord.catalog_tool $(if $(PRUNE),--prune,)

# Re-pin requirements.lock (used by the Dockerfile) after changing pyproject's dependencies.
# The tests check that the lock still satisfies pyproject.toml.
lock:
	test -x .lock-venv/bin/pip-compile || ($(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet pip-tools)
	.lock-venv/bin/pip-compile --quiet --allow-unsafe --generate-hashes --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .lock-venv .pytest_cache .mypy_cache .ruff_cache
