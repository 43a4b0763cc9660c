"""Extra TVM kernels for the reliability tests, with read/write sets the seed kernels lack.

Each accepts views at any offset (offset_factor=1). Built once per process with target llvm.
"""

from __future__ import annotations

from functools import cache

import tvm

_SUM_DIFF_SOURCE = """
@T.prim_func
def main(a: T.handle, b: T.handle, o1: T.handle, o2: T.handle):
    n = T.int64()
    A = T.match_buffer(a, (n,), "float32", offset_factor=1)
    B = T.match_buffer(b, (n,), "float32", offset_factor=1)
    O1 = T.match_buffer(o1, (n,), "float32", offset_factor=1)
    O2 = T.match_buffer(o2, (n,), "float32", offset_factor=1)
    for i in range(n):
        O1[i] = A[i] + B[i]
        O2[i] = A[i] - B[i]
"""

_AXPY_SOURCE = """
@T.prim_func
def main(y: T.handle, x: T.handle, alpha: T.float32):
    n = T.int64()
    Y = T.match_buffer(y, (n,), "float32", offset_factor=1)
    X = T.match_buffer(x, (n,), "float32", offset_factor=1)
    for i in range(n):
        Y[i] = Y[i] + alpha * X[i]
"""


@cache
def sum_diff() -> tvm.runtime.Module:
    """Two outputs: o1 = a + b, o2 = a - b over 1-D float32; args (a, b, o1, o2)."""
    return tvm.build(tvm.script.from_source(_SUM_DIFF_SOURCE), target="llvm")


@cache
def axpy() -> tvm.runtime.Module:
    """In place: y += alpha * x over 1-D float32; y is read and written; args (y, x, alpha)."""
    return tvm.build(tvm.script.from_source(_AXPY_SOURCE), target="llvm")
