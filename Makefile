# mitm-sepp: the two set-up commands are `make lab` and `make test`.
# Both create .venv with Python 3.12 when it is missing and install the pinned project.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# python3.12 may be a pyenv shim that is not the global version: find a real interpreter.
PYTHON312 ?= $(shell for p in python3.12 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 2>/dev/null); do \
	if $$p -c 'import sys; assert sys.version_info[:2]==(3,12)' >/dev/null 2>&1; then echo $$p; break; fi; done)

UES ?= 3
MODE ?= prins
SUITE ?= A128GCM
IPX ?= 0
KEEP ?= 0

.PHONY: venv test lab certs bench clean

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON312)" || { echo "error: Python 3.12 not found (mitmproxy 12 needs it); install it or set PYTHON312=/path/to/python3.12" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

certs: venv
	$(PY) -m certs.pki --out certs/out

lab: venv
	$(PY) -m lab.run --ues $(UES) --mode $(MODE) --suite $(SUITE) --ipx $(IPX) --keep $(KEEP)

bench: venv
	@command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client; }
	$(PY) -m bench.run

clean:
	rm -rf certs/out lab/out .pytest_cache
