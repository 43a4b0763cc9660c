"""Kernels built by a TVM of the PackedFunc generation (hhb-tvm 3.2.3: TVM 0.16.dev0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tvm
from tvm import te

#: hhb-tvm's default "llvm" target is riscv64; the machines running the tests are x86-64.
TARGET = "llvm -mtriple=x86_64-linux-gnu"


def scaled_add(n: int | None = None, name: str = "scaled_add") -> Any:
    """The seed's kernel, (x + y) * scale, as a runtime Module (symbolic length by default)."""
    length = te.var("n") if n is None else n
    x = te.placeholder((length,), name="x")
    y = te.placeholder((length,), name="y")
    scale = te.var("scale", dtype="float32")
    z = te.compute((length,), lambda i: (x[i] + y[i]) * scale, name="z")
    schedule = te.create_schedule(z.op)
    return tvm.build(schedule, [x, y, z, scale], TARGET, name=name)


def shift_by(name: str = "shift_by") -> Any:
    """z = x + offset (an int64 scalar), for 1-D int64 arrays."""
    n = te.var("n")
    x = te.placeholder((n,), name="x", dtype="int64")
    offset = te.var("offset", dtype="int64")
    z = te.compute((n,), lambda i: x[i] + offset, name="z")
    return tvm.build(te.create_schedule(z.op), [x, z, offset], TARGET, name=name)


def pick_if(name: str = "pick_if") -> Any:
    """z = x where the bool ``flag`` is set, else 0 (float32)."""
    n = te.var("n")
    x = te.placeholder((n,), name="x")
    flag = te.var("flag", dtype="bool")
    zero = tvm.tir.const(0, "float32")
    z = te.compute((n,), lambda i: tvm.tir.Select(flag, x[i], zero), name="z")
    return tvm.build(te.create_schedule(z.op), [x, z, flag], TARGET, name=name)


def exported(module: Any, directory: Path, file_name: str = "kernel.so") -> Path:
    """``module.export_library`` into ``directory``; returns the absolute path."""
    path = (directory / file_name).resolve()
    module.export_library(str(path))
    return path
