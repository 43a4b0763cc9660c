"""Names for the objects of MXNet and TVM in annotations: each is ``Any``, said once, here.

MXNet 1.9.1 and TVM 0.27 ship neither inline types nor stubs (pyproject.toml's [tool.mypy]
overrides), so every object of theirs is ``Any`` to mypy whatever the annotation says; a class
name of theirs in a signature would only look checked. These aliases name what a value is at
run time, so a signature still tells its reader, and ``Any`` stays in this module and the
binding layer (bridge_cffi.native, _native.pyi): the bridge's own objects carry real types.
"""

from __future__ import annotations

from typing import Any, TypeAlias

#: An ``mx.nd.NDArray``.
NDArray: TypeAlias = Any
#: An ``mx.sym.Symbol``.
Symbol: TypeAlias = Any
#: What a bridged call or an operator returns: one NDArray, or a tuple of NDArrays (one per
#: output), or a Symbol when it was applied to Symbols.
Outputs: TypeAlias = Any
#: An ``mx.Context`` (``mx.cpu(0)``, ``mx.gpu(0)``).
Context: TypeAlias = Any
#: A dtype as MXNet and numpy take it: a name, a numpy dtype or scalar type.
DType: TypeAlias = Any
#: What ``to_mxnet_func``, ``direct`` and ``make_kernel`` accept: a TVM runtime Module, a
#: ``tvm_ffi.Function`` or legacy PackedFunc, a protocol kernel, an exported library's path, a
#: Python callable, or un-built TVM code (a PrimFunc, an IRModule); told apart at run time.
KernelSource: TypeAlias = Any
#: A TVM runtime Module, or a ``tvm_ffi.Function`` / legacy PackedFunc.
TvmModule: TypeAlias = Any
TvmFunction: TypeAlias = Any
#: Un-built TVM code: a ``tvm.tir.PrimFunc``, or an ``IRModule`` holding one.
PrimFunc: TypeAlias = Any
#: A node of a PrimFunc's body (``tvm.tir`` expressions and statements: Var, BufferStore,
#: Block, PrimExpr) or a buffer's dimension.
TirNode: TypeAlias = Any
#: A ``tvm.target.Target``, or the string naming one.
Target: TypeAlias = Any
