# Set-up and run targets. Every target creates or reuses .venv/ at the repo root and installs
# the pinned stack (see pyproject.toml's [stack] extra for the pins and why).
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# Every file under csrc/ (the sources in all subfolders, the headers, symbols.def and the build
# script csrc/build_native.py): a change to any of them rebuilds the extension.
NATIVE_SOURCES := $(shell find csrc -type f \( -name '*.c' -o -name '*.h' -o -name '*.def' -o -name '*.py' \))
STAMP := $(VENV)/.bridge_cffi-installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench install clean

$(VPY):
	$(PYTHON) -m venv $(VENV)

# Editable install: builds csrc/ into bridge_cffi/_native through cffi_modules, in place.
$(STAMP): $(VPY) pyproject.toml setup.py $(NATIVE_SOURCES)
	$(VPY) -m pip install --disable-pip-version-check -q -e '.[stack,test,lint]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VPY) examples/seed_example.py
	$(VPY) -m abi_checks

test: $(STAMP)
	$(VPY) -m pytest $(PYTEST_ARGS)

# ruff, mypy --strict and import-linter over the whole tree (pyproject.toml's [tool.ruff],
# [tool.mypy] and [tool.importlinter]: the rules, and why each exception). All run, so one report
# shows every finding.
lint: $(STAMP)
	@status=0; \
	$(VENV)/bin/ruff check . || status=1; \
	$(VPY) -m mypy || status=1; \
	$(VENV)/bin/lint-imports || status=1; \
	exit $$status

# Figures as ratios measured side by side in one run; --json also writes benchmarks/results/.
bench: $(STAMP)
	$(VPY) -m benchmarks --json

clean:
	rm -rf build bridge_cffi/_native.* *.egg-info $(STAMP)

# ASan + UBSan: builds csrc/ instrumented into a copy of the tree under $(ASAN_DIR) (the in-place
# extension others use is left alone), checks with a planted overflow that the sanitizer is
# live, then runs the core tests against the copy with the ASan runtime preloaded into Python.
# See docs/reliability.md.
ASAN_DIR ?= $(CURDIR)/build/asan
ASAN_TREE = $(ASAN_DIR)/tree
ASAN_CFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1
ASAN_TESTS ?= tests/test_bridge_aliasing.py tests/test_bridge_bad_inputs.py \
	tests/test_bridge_c_protocol.py tests/test_bridge_chain.py tests/test_bridge_engines.py \
	tests/test_bridge_errors.py tests/test_bridge_library_binding.py tests/test_bridge_lifetime.py \
	tests/test_bridge_seed.py tests/test_bridge_values.py tests/test_reliability_fuzz.py \
	tests/test_reliability_concurrency.py tests/test_reliability_lifetime.py \
	tests/test_reliability_failures.py tests/test_reliability_bad_inputs.py
ASAN_FUZZ_OPS ?= 2000
ASAN_EXAMPLES ?= 150
ASAN_RUNTIME = $(shell $${CC:-gcc} -print-file-name=libasan.so) $(shell $${CC:-gcc} -print-file-name=libubsan.so)
# Every sanitizer report, from pytest or from any interpreter a test starts (a child's stderr is
# often captured by its test and never shown), is written to $(ASAN_REPORTS).<pid>: after the
# tests that directory must be empty. The canary's report lands there too, which shows it works.
ASAN_REPORTS = $(ASAN_DIR)/reports/report
ASAN_ENV = LD_PRELOAD="$(ASAN_RUNTIME)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0:log_path=$(ASAN_REPORTS) \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(ASAN_REPORTS) PYTHONPATH=$(ASAN_TREE) \
	BRIDGE_CFFI_FUZZ_OPS=$(ASAN_FUZZ_OPS) BRIDGE_CFFI_HYPOTHESIS_EXAMPLES=$(ASAN_EXAMPLES)

.PHONY: asan
asan: $(STAMP)
	rm -rf $(ASAN_TREE) && mkdir -p $(ASAN_TREE)
	tar --exclude=./.venv --exclude=./build --exclude=./.git --exclude='*.so' \
		--exclude=__pycache__ -cf - . | tar -xf - -C $(ASAN_TREE)
	cd $(ASAN_TREE) && CFLAGS="$(ASAN_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" \
		$(CURDIR)/$(VPY) setup.py -q build_ext --inplace
	readelf -d $(ASAN_TREE)/bridge_cffi/_native*.so | grep -q libasan
	readelf -d $(ASAN_TREE)/bridge_cffi/_native*.so | grep -q libubsan
	# Canary: an overflow planted through the extension must be caught, in the copy's module.
	rm -rf $(dir $(ASAN_REPORTS)) && mkdir -p $(dir $(ASAN_REPORTS))
	cd $(ASAN_TREE) && ! $(ASAN_ENV) $(CURDIR)/$(VPY) tests/reliability_asan_canary.py \
		> $(ASAN_DIR)/canary.log 2>&1
	grep -q "extension: $(ASAN_TREE)/bridge_cffi/" $(ASAN_DIR)/canary.log
	cat $(ASAN_REPORTS).* >> $(ASAN_DIR)/canary.log && rm -f $(ASAN_REPORTS).*
	grep -q "AddressSanitizer: heap-buffer-overflow" $(ASAN_DIR)/canary.log
	cd $(ASAN_TREE) && $(ASAN_ENV) $(CURDIR)/$(VPY) -m pytest -q -p no:cacheprovider $(ASAN_TESTS)
	# A report from any process of the run fails the target, even one whose test passed.
	@if ls $(ASAN_REPORTS).* > /dev/null 2>&1; then cat $(ASAN_REPORTS).* >&2; \
		echo "sanitizer reports in $(dir $(ASAN_REPORTS))" >&2; exit 1; fi
