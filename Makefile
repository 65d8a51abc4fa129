# xdl: `make test` is what CI runs; `make demo` shows the main job on a loopback site.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUICK ?=
PREFIX ?= $(HOME)/.local

.PHONY: all venv test test-fast lint bench demo docs install-extras clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core

# The whole suite (pytest-xdist); its last line says how long it took. Most tests wait on
# servers and subprocesses, not on a core: two workers a core, and an idle worker takes
# tests from a busy one (worksteal), so the slow ones do not all end up last on one.
JOBS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) * 2 )))
PYTEST_XDIST := -n $(JOBS) --dist worksteal
# xdl's bytecode first: the suite starts xdl as a process hundreds of times, and under
# PYTHONDONTWRITEBYTECODE an editable install compiles its modules again at each start.
test: lint
	$(BIN)/python -m compileall -q cli core
	$(BIN)/pytest -q $(PYTEST_XDIST)

# The edit loop: no lint, no test marked slow, none of the end-to-end suites that start
# real servers, several processes or whole pipelines (CI runs them all), and none that
# took over half a second the last time it ran (pytest's cache keeps each test's time:
# the first run, or one after `make test`, teaches it); the first failure stops.
FAST_SKIP := cookbook queue_pg queue_procs queue_hosts politeness fuzz queue_e2e fetch_target
test-fast: venv
	$(BIN)/python -m compileall -q cli core
	$(BIN)/pytest -q $(PYTEST_XDIST) -x -m "not slow" --quick 0.5 $(foreach f,$(FAST_SKIP),--ignore=tests/test_$(f).py)

demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" sh examples/demo.sh

# xdl's bytecode first, as a pip install has it (yt-dlp's wheel has): an editable install
# under PYTHONDONTWRITEBYTECODE would compile xdl's modules again on every run timed.
bench: venv
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python -m compileall -q cli core
	$(BIN)/python bench/run.py $(if $(QUICK),--quick)

# Man pages and shell completions, generated from the click tree (a test fails on drift).
docs: venv
	$(BIN)/python tools/gen_docs.py

# `make install-extras PREFIX=~/.local`: man pages and completions where man and shells look.
install-extras:
	install -d "$(DESTDIR)$(PREFIX)/share/man/man1" \
		"$(DESTDIR)$(PREFIX)/share/bash-completion/completions" \
		"$(DESTDIR)$(PREFIX)/share/zsh/site-functions" \
		"$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d"
	install -m 644 man/*.1 "$(DESTDIR)$(PREFIX)/share/man/man1/"
	install -m 644 completions/xdl.bash "$(DESTDIR)$(PREFIX)/share/bash-completion/completions/xdl"
	install -m 644 completions/_xdl "$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_xdl"
	install -m 644 completions/xdl.fish "$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/xdl.fish"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
