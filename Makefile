# Two commands do everything on a fresh machine (Python 3.11, pip, npm): `make demo`, `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REFERENCE := tools/reference/node_modules/.package-lock.json
LFW := ../shared/data/lfw/lfw-deepfunneled
# An impostor pair from LFW's official pairs.txt (fold 1).
DEMO_A := $(LFW)/Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg
DEMO_B := $(LFW)/Dean_Barker/Dean_Barker_0001.jpg

.PHONY: demo test test-long setup assets browser lint imports typecheck pytest check-runtimes bench-lfw clean

demo: setup
	$(VENV)/bin/facexplain explain $(DEMO_A) $(DEMO_B) --out out/demo

test: setup lint imports typecheck pytest

setup: $(STAMP) assets $(REFERENCE) browser

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

assets: $(STAMP)
	$(PY) -m facexplain.asset_catalog

# Debian's Chromium drives the browser tests (Playwright's own download is not used); installed
# only when missing and only with root or password-less sudo, else the tests skip with a reason.
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  sudo apt-get update -q && sudo apt-get install -y -q chromium; \
	else echo "note: no Chromium and no root: the browser tests will be skipped"; fi

$(REFERENCE): tools/reference/package.json tools/reference/package-lock.json
	cd tools/reference && npm ci --no-audit --no-fund --loglevel=error

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

# The layers of docs/ARCHITECTURE.md (contract in pyproject.toml): an upward import or a cycle fails.
imports: $(STAMP)
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy src

# The default run leaves out the long end-to-end checks (marker `long`); CI runs them after it.
pytest: setup
	$(VENV)/bin/pytest -q -m "not long" --durations=15

test-long: setup
	$(VENV)/bin/pytest -q -m long --durations=15

check-runtimes: setup
	$(VENV)/bin/pytest -v -s tests/integration/test_sface_reference.py \
	  tests/integration/test_dlib_resnet.py tests/integration/test_human_models.py

bench-lfw: setup
	for b in sface dlib-resnet faceres mobileface; do \
	  $(VENV)/bin/facexplain benchmark lfw --backbone $$b --json out/benchmarks/lfw-$$b.json; \
	  $(VENV)/bin/facexplain benchmark lfw --backbone $$b --flip \
	    --json out/benchmarks/lfw-$$b-flip.json; done

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
