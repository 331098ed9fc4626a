# Two commands a fresh Debian machine needs: `make up` and `make test`. Both set up what is missing.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup up test bench schemas

# `medialane` from any directory: setup links it into LINK_DIR when that is writable (as root), and says so.
LINK_DIR ?= /usr/local/bin
MEDIALANE := $(abspath $(BIN))/medialane

setup: $(VENV)/.installed
	@if [ "$$(readlink $(LINK_DIR)/medialane)" = "$(MEDIALANE)" ]; then :; \
	elif [ -w $(LINK_DIR) ]; then ln -sfn $(MEDIALANE) $(LINK_DIR)/medialane && echo "medialane is on the PATH: $(LINK_DIR)/medialane -> $(MEDIALANE)"; \
	else echo "$(LINK_DIR) is not writable: run $(MEDIALANE), or add $(abspath $(BIN)) to PATH"; fi

$(VENV)/.installed: pyproject.toml
	@command -v exiftool >/dev/null || { apt-get update -qq && apt-get install -y -qq libimage-exiftool-perl; }
	@# The web page's browser test (tests/test_page.py) drives Debian's chromium with its chromedriver.
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }
	@# tcmalloc only makes exiftool faster (adapters/exiftool.py): without it, setup goes on.
	@ldconfig -p | grep -q libtcmalloc_minimal || { apt-get update -qq && apt-get install -y -qq libtcmalloc-minimal4; } \
		|| echo "libtcmalloc-minimal4 not installed: exiftool runs on glibc's malloc, ~15% slower"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

up: setup
	$(BIN)/medialane up

test: setup
	$(BIN)/python -m pytest

# Every benchmark, one after the other (figures in docs/benchmarks.md); about 15 minutes.
bench: setup
	for b in metadata pipeline phash phash_index similar_restart searchable strip uniquify_loop uniquify; do \
		$(BIN)/python -m bench.$$b || exit 1; done

schemas: setup
	$(BIN)/medialane schemas
