"""ASan canary for `make asan`: proves the sanitizer is live in the extension under test.

Deliberately hands bridge_mxnet_bind a 600-byte error buffer (the contract is
BRIDGE_ERROR_CAPACITY = 1024) and a path long enough for the message to overflow it. Under the
instrumented build this must die with an AddressSanitizer heap-buffer-overflow report; `make
asan` checks that it does, and that the module came from the instrumented copy of the tree.
Never run this against the normal build: there it silently corrupts the heap.
"""

from __future__ import annotations

import sys

from bridge_cffi.native import EXTENSION_PATH, ffi, lib

print(f"extension: {EXTENSION_PATH}", file=sys.stderr, flush=True)
with open("/proc/self/maps") as maps:
    if "libasan" not in maps.read():
        sys.exit("the ASan runtime is not loaded in this process")
too_small = ffi.new("char[]", 600)  # > 512 bytes: cffi takes it from malloc, which ASan guards
lib.bridge_mxnet_bind(b"/nonexistent/" + b"x" * 1000, too_small)
sys.exit("no AddressSanitizer report: the canary overflow went unnoticed")
