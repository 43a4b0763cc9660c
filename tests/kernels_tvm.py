"""TVM kernels the tests wrap, built once per session with tvm.build(target="llvm")."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import tvm
from tvm import te


@cache
def scaled_add() -> tvm.runtime.Module:
    """The seed: z = (x + y) * s over float32 vectors of any length; args (x, y, z, s)."""
    n = te.var("n")
    x = te.placeholder((n,), name="x")
    y = te.placeholder((n,), name="y")
    s = te.var("s", dtype="float32")
    z = te.compute((n,), lambda i: (x[i] + y[i]) * s, name="z")
    return tvm.build(te.create_prim_func([x, y, z, s]), target="llvm")


@cache
def add_scalar(dtype: str) -> tvm.runtime.Module:
    """out = a + k for 1-D ``dtype`` arrays (views accepted) and an int64 k; args (a, out, k)."""
    source = f"""
@T.prim_func
def main(a: T.handle, out: T.handle, k: T.int64):
    n = T.int64()
    A = T.match_buffer(a, (n,), "{dtype}", offset_factor=1)
    O = T.match_buffer(out, (n,), "{dtype}", offset_factor=1)
    for i in range(n):
        O[i] = A[i] + T.Cast("{dtype}", k)
"""
    return tvm.build(tvm.script.from_source(source), target="llvm")


@cache
def scalars_to_array() -> tvm.runtime.Module:
    """out = [i, f, b] as float64 from an int64, a float64 and a bool; args (out, i, f, b)."""
    i = te.var("i", dtype="int64")
    f = te.var("f", dtype="float64")
    b = te.var("b", dtype="bool")
    out = te.compute(
        (3,),
        lambda j: te.if_then_else(
            j == 0, i.astype("float64"), te.if_then_else(j == 1, f, b.astype("float64"))
        ),
        name="out",
    )
    return tvm.build(te.create_prim_func([out, i, f, b]), target="llvm")


_SCALE_2D_SOURCE = """
@T.prim_func
def main(a: T.handle, out: T.handle, s: T.float32):
    m = T.int64()
    n = T.int64()
    A = T.match_buffer(a, (m, n), "float32", offset_factor=1)
    O = T.match_buffer(out, (m, n), "float32", offset_factor=1)
    for i, j in T.grid(m, n):
        O[i, j] = A[i, j] * s
"""


@cache
def scale_2d() -> tvm.runtime.Module:
    """out = a * s for 2-D float32 arrays of any shape, views accepted; args (a, out, s)."""
    return tvm.build(tvm.script.from_source(_SCALE_2D_SOURCE), target="llvm")


# Buffers declared with offset_factor=1 accept views whose data is not 64-byte aligned: the
# bridge hands such views over as an aligned data pointer plus DLPack byte_offset.
_ADD_INTO_SOURCE = """
@T.prim_func
def main(a: T.handle, b: T.handle, out: T.handle):
    n = T.int64()
    A = T.match_buffer(a, (n,), "float32", offset_factor=1)
    B = T.match_buffer(b, (n,), "float32", offset_factor=1)
    O = T.match_buffer(out, (n,), "float32", offset_factor=1)
    for i in range(n):
        O[i] = A[i] + B[i]
"""


@cache
def add_into() -> tvm.runtime.Module:
    """out = a + b over float32 vectors, views at any offset accepted; args (a, b, out)."""
    return tvm.build(tvm.script.from_source(_ADD_INTO_SOURCE), target="llvm")


@cache
def add_into_aligned_only() -> tvm.runtime.Module:
    """out = a + b with TVM's default buffers, which require byte_offset == 0."""
    n = te.var("n")
    a = te.placeholder((n,), name="a")
    b = te.placeholder((n,), name="b")
    out = te.compute((n,), lambda i: a[i] + b[i], name="out")
    return tvm.build(te.create_prim_func([a, b, out]), target="llvm")


def unchecked(module: tvm.runtime.Module, directory: Path) -> tvm.runtime.Module:
    """``module`` exported and loaded back: its signature is no longer readable from IR, so
    the bridge leaves every argument check to the kernel (errors arrive late).
    """
    path = directory / f"unchecked_{id(module)}.so"
    module.export_library(str(path))
    return tvm.runtime.load_module(str(path))


def default_add_prim_func(dtype: str = "float32") -> tvm.tirx.PrimFunc:
    """out = a + b with TVM's default buffers (te.placeholder), un-built; args (a, b, out)."""
    n = te.var("n")
    a = te.placeholder((n,), name="a", dtype=dtype)
    b = te.placeholder((n,), name="b", dtype=dtype)
    out = te.compute((n,), lambda i: a[i] + b[i], name="out")
    return te.create_prim_func([a, b, out])


@cache
def add_into_default(dtype: str) -> tvm.runtime.Module:
    """default_add_prim_func built: the README's own kind of kernel, needs byte_offset 0."""
    return tvm.build(default_add_prim_func(dtype), target="llvm")


@cache
def bool_to_float() -> tvm.runtime.Module:
    """out = 1.0 where mask else 0.0; args (mask: bool, out: float32)."""
    n = te.var("n")
    mask = te.placeholder((n,), name="mask", dtype="bool")
    out = te.compute((n,), lambda i: te.if_then_else(mask[i], 1.0, 0.0).astype("float32"),
                     name="out")
    return tvm.build(te.create_prim_func([mask, out]), target="llvm")
