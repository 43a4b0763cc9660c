# Set-up and run targets. Every target creates or reuses .venv/ at the repo root and installs
# the pinned stack (see pyproject.toml's [stack] extra for the pins and why).
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
NATIVE_SOURCES := $(wildcard csrc/*.c csrc/*.h csrc/include/bridge_cffi/*.h) bridge_cffi/_build_native.py
STAMP := $(VENV)/.bridge_cffi-installed
PYTEST_ARGS ?=

.PHONY: demo test bench install clean

$(VPY):
	$(PYTHON) -m venv $(VENV)

# Editable install: builds csrc/ into bridge_cffi/_native through cffi_modules, in place.
$(STAMP): $(VPY) pyproject.toml setup.py $(NATIVE_SOURCES)
	$(VPY) -m pip install --disable-pip-version-check -q -e '.[stack,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VPY) examples/seed_example.py
	$(VPY) -m abi_checks

test: $(STAMP)
	$(VPY) -m pytest $(PYTEST_ARGS)

# Figures as ratios measured side by side in one run; --json also writes benchmarks/results/.
bench: $(STAMP)
	$(VPY) -m benchmarks --json

clean:
	rm -rf build bridge_cffi/_native.* *.egg-info $(STAMP)
