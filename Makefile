# mitm-sepp: the two set-up commands are `make lab` and `make test`.
# Both create .venv with Python 3.12 when it is missing and install the locked dependencies
# (requirements.lock) and the project.
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
NF ?= tls
KEEP ?= 0
OUT ?= lab/out
CAPTURE ?= 0
WORKERS ?= 1
SLIM ?= 0

.PHONY: venv lock test lab certs bench clean system-deps probe soak

# Debian packages the tests and tools use: headless Chromium (mitmweb view and lab report checks)
# and an emoji font for its screenshots, tshark/dumpcap (CAPTURE=1, tests/integration/test_capture.py),
# nghttp2 client/server (h2load for make bench, nghttpd as an h2c NF) and haproxy (a TLS front in
# interop tests). Installed only when missing; needs root (or sudo) and apt.
SYSTEM_PKGS := chromium fonts-noto-color-emoji tshark nghttp2-client nghttp2-server haproxy
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PIP := $(PY) -m pip install --disable-pip-version-check -q

# One line per step; pip's own output goes to .venv/install.log and is shown only on failure.
$(VENV)/.installed: pyproject.toml requirements.lock
	@test -n "$(PYTHON312)" || { echo "error: Python 3.12 not found (mitmproxy 12 needs >= 3.12); install it or set PYTHON312=/path/to/python3" >&2; exit 1; }
	@test -x $(PY) || { echo "venv: creating $(VENV) with $(PYTHON312)"; $(PYTHON312) -m venv $(VENV); }
	@echo "venv: installing the locked dependencies (requirements.lock; a minute or two on first use)"
	@$(PIP) -r requirements.lock >$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@echo "venv: installing mitm-sepp from this clone (editable; console command $(VENV)/bin/mitm-sepp)"
	@$(PIP) --no-deps -e . >>$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $@

# After changing the ranges in pyproject.toml: resolve the newest versions they allow in a
# scratch venv, run the suite there, and keep what passed as the lock.
lock:
	rm -rf .venv-lock && $(PYTHON312) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --disable-pip-version-check -q -e '.[test,bench]'
	.venv-lock/bin/python -m pytest -q -x -p no:cacheprovider
	{ echo "# pip freeze of the environment the suite last passed in (make lock); make venv installs it"; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > requirements.lock
	rm -rf .venv-lock

venv: $(VENV)/.installed

system-deps:
	@missing=$$(for p in $(SYSTEM_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "system-deps: installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

test: venv system-deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

certs: venv
	$(PY) -m certs.pki --out certs/out

lab: venv
	$(PY) -m lab.run --ues $(UES) --mode $(MODE) --suite $(SUITE) --ipx $(IPX) --nf $(NF) --keep $(KEEP) --out $(OUT) --capture $(CAPTURE) --workers $(WORKERS) --slim $(SLIM)

# Under ~10 minutes; not part of make test. Results: bench/out/results.json and bench/out/bench.png.
# Run the SEPP security cases against a SEPP under test (README: "Probing a SEPP under test").
probe: venv
	@test -n "$(CONFIG)" || { echo "usage: make probe CONFIG=probe.yaml [CASES='4.2.2.7 4.2.5']" >&2; exit 2; }
	$(PY) -m probe --config $(CONFIG) $(foreach c,$(CASES),--case $(c)) --json probe-report.json --junit probe-report.xml

bench: venv
	@command -v h2load >/dev/null && command -v nghttpd >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nghttp2-client nghttp2-server; }
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(PY) -m pip install -q -e '.[test,bench]'
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf certs/out lab/out .pytest_cache

# Not part of make test: MINUTES of lab traffic with rekeys and one SEPP restart (bench/soak.py).
MINUTES ?= 10
soak: venv
	$(PY) -m bench.soak --minutes $(MINUTES)
