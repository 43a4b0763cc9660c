"""Facts the bridge and the probe (abi_checks) share: pure Python, no native code.

The symbol table (csrc/runtime/symbols.def) and its reader, the version rules for MXNet and TVM, and
the reader of this process's ``/proc/self/maps``. Nothing here imports the rest of
bridge_cffi or abi_checks, so the probe can use it when the extension cannot be built or
loaded, and neither side needs the other's internals.
"""
