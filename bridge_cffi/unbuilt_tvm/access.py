"""What an un-built PrimFunc does with each parameter: its read/write sets, from the IR.

``to_mxnet_func`` hands an un-built ``tvm.tirx.PrimFunc`` or ``IRModule`` to
:func:`wrap_unbuilt`. The PrimFunc's body says, for every buffer parameter, whether it is
loaded, stored, or both (TVM 0.27: ``BufferStore.buffer`` and ``TensorLoad.source`` are the
parameter's buffer-typed ``Var``; ``SBlock`` ``reads``/``writes`` annotations count too):

- only loaded (or never touched): a read dependency, i.e. in ``const_loc``;
- only stored: an *output*, which the wrapper can allocate with MXNet and return;
- loaded and stored: *in place*, written, and always passed by the caller;
- used any other way (e.g. its data pointer handed to an extern call): *opaque*, treated as
  written unless an explicit ``const_loc`` says it is only read.

A load inside an ``SBlock`` that has an ``init`` and writes the same buffer is the reduction's
own accumulator (``C[i] = C[i] + ...`` after ``T.init()``), not a read of the caller's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge_cffi.errors import BridgeTypeError, BridgeValueError
from bridge_cffi.foreign_types import PrimFunc, TirNode
from bridge_cffi.mxnet.function import check_const_loc_range

# Access kinds of a parameter, as reported by :func:`analyse`.
READ = "read"  # only loaded: const
WRITE = "write"  # only stored: an output the wrapper allocates when the caller leaves it out
READWRITE = "readwrite"  # loaded and stored: in place, the caller passes it
OPAQUE = "opaque"  # used other than by loads and stores: written unless declared const
UNUSED = "unused"  # a buffer the body never touches: const
SCALAR = "scalar"  # not a buffer: passed through positionally

CONST_ACCESS = frozenset({READ, UNUSED})


@dataclass(frozen=True)
class Parameter:
    """One parameter of the PrimFunc, as the bridge sees it."""

    position: int
    name: str
    access: str  # one of READ, WRITE, READWRITE, OPAQUE, UNUSED, SCALAR
    dtype: str
    shape: tuple[Any, ...]  # TVM PrimExprs; () for scalars
    has_strides: bool
    loads: int
    stores: int
    why: str  # how the access kind was decided, for error messages
    var: Any  # the tvm Var of the parameter

    @property
    def is_buffer(self) -> bool:
        """True for a buffer (array) parameter, False for a scalar one."""
        return self.access != SCALAR

    @property
    def is_output(self) -> bool:
        """True when the function only writes this buffer, so the wrapper can allocate it."""
        return self.access == WRITE


def var_handle(obj: TirNode) -> int:
    """A TVM object's identity (its C handle), the key for Vars and buffers."""
    return int(obj.__chandle__())


def global_symbol(prim_func: PrimFunc, default: str) -> str:
    """The PrimFunc's ``global_symbol`` attribute, else ``default``."""
    attrs = prim_func.attrs
    return str(attrs["global_symbol"]) if attrs and "global_symbol" in attrs else default


def select_prim_func(func: PrimFunc) -> tuple[PrimFunc, PrimFunc, str]:
    """Return (PrimFunc, what to build, its symbol in the built module)."""
    import tvm
    from tvm import tirx

    if isinstance(func, tirx.PrimFunc):
        return func, func, global_symbol(func, "main")
    if isinstance(func, tvm.IRModule):
        prim_funcs = [
            (gvar.name_hint, f)
            for gvar, f in func.functions.items()
            if isinstance(f, tirx.PrimFunc)
        ]
        if not prim_funcs:
            raise BridgeTypeError("func: the IRModule holds no PrimFunc to build")
        chosen = [pf for pf in prim_funcs if pf[0] == "main"] if len(prim_funcs) > 1 else prim_funcs
        if not chosen:
            names = sorted(name for name, _ in prim_funcs)
            raise BridgeValueError(
                f"func: the IRModule holds several PrimFuncs {names} and none is named 'main'; "
                f"pass the one to run, e.g. to_mxnet_func(mod[{names[0]!r}])"
            )
        name, prim_func = chosen[0]
        return prim_func, func, global_symbol(prim_func, name)
    raise BridgeTypeError(f"func: expected a tvm PrimFunc or IRModule, got {type(func).__name__}")


def analyse(func: PrimFunc) -> tuple[Parameter, ...]:
    """Classify each parameter of an un-built PrimFunc (or an IRModule's PrimFunc)."""
    import tvm_ffi
    from tvm import ir, tirx
    from tvm.s_tir.stmt import SBlock

    prim_func, _, _ = select_prim_func(func)
    params = list(prim_func.params)
    buffers = {var_handle(p): p for p in params if isinstance(p.ty, tirx.BufferType)}
    loads: dict[int, int] = dict.fromkeys(buffers, 0)
    stores = dict(loads)
    region_reads = dict(loads)
    region_writes = dict(loads)
    accumulator_loads = dict(loads)
    occurrences = dict(loads)

    def on_store(node: TirNode) -> None:
        key = var_handle(node.buffer)
        if key in stores:
            stores[key] += 1

    def on_load(node: TirNode) -> None:
        key = var_handle(node.source)
        if key in loads:
            loads[key] += 1

    def on_var(node: TirNode) -> None:
        key = var_handle(node)
        if key in occurrences:
            occurrences[key] += 1

    def on_block(block: TirNode) -> None:
        written_here = set()
        for region in block.reads:
            key = var_handle(region.source)
            if key in region_reads:
                region_reads[key] += 1
        for region in block.writes:
            key = var_handle(region.source)
            if key in region_writes:
                region_writes[key] += 1
                written_here.add(key)
        if block.init is not None and written_here:

            def on_accumulator(node: TirNode) -> None:
                key = var_handle(node.source)
                if key in written_here:
                    accumulator_loads[key] += 1

            tvm_ffi.structural_walk(block.body, [(ir.TensorLoad, on_accumulator)])

    tvm_ffi.structural_walk(
        prim_func.body,
        [
            (tirx.BufferStore, on_store),
            (ir.TensorLoad, on_load),
            (SBlock, on_block),
        ],
    )
    tvm_ffi.structural_walk(prim_func.body, [(ir.Var, on_var)])

    result = []
    for position, param in enumerate(params):
        key = var_handle(param)
        name = str(param.name) if hasattr(param, "name") else str(param)
        if key not in buffers:
            result.append(
                Parameter(
                    position,
                    name,
                    SCALAR,
                    str(param.ty.dtype),
                    (),
                    False,
                    0,
                    0,
                    "a scalar parameter",
                    param,
                )
            )
            continue
        real_loads = loads[key] - accumulator_loads[key]
        read = real_loads > 0 or region_reads[key] > 0
        written = stores[key] > 0 or region_writes[key] > 0
        accounted = loads[key] + stores[key] + region_reads[key] + region_writes[key]
        if occurrences[key] > accounted:
            access = OPAQUE
            why = (
                f"used {occurrences[key] - accounted} time(s) other than by a load or store "
                f"(e.g. its data pointer passed to a call), so the bridge cannot tell"
            )
        elif read and written:
            access, why = READWRITE, f"loaded at {real_loads} and stored at {stores[key]} site(s)"
        elif written:
            access, why = WRITE, f"stored at {stores[key]} site(s) and never loaded"
        elif read:
            access, why = READ, f"loaded at {real_loads} site(s) and never stored"
        else:
            access, why = UNUSED, "never accessed"
        result.append(
            Parameter(
                position,
                name,
                access,
                str(param.dtype),
                tuple(param.shape),
                len(param.strides) > 0,
                real_loads,
                stores[key],
                why,
                param,
            )
        )
    return tuple(result)


def check_const_loc_agrees(const_loc: frozenset[int], params: Sequence[Parameter]) -> None:
    """Refuse an explicit ``const_loc`` that contradicts the inferred accesses (its range is
    checked by ``check_const_loc_range`` first).
    """
    check_const_loc_range(const_loc, len(params), "a function")
    for param in params:
        listed = param.position in const_loc
        label = f"argument {param.position} ({param.name})"
        if listed and param.access == SCALAR:
            raise BridgeValueError(
                f"const_loc: {label} is a scalar parameter; const_loc names array arguments only"
            )
        if listed and param.access in (WRITE, READWRITE):
            role = "an output" if param.access == WRITE else "updated in place"
            raise BridgeValueError(
                f"const_loc: {label} is written by the function ({param.why}: {role}), so it "
                f"cannot be read-only; remove {param.position} from const_loc, or pass "
                f"const_loc=None to use the inferred read/write sets"
            )
        if not listed and param.access == READ:
            raise BridgeValueError(
                f"const_loc: {label} is only read by the function ({param.why}), but leaving it "
                f"out of const_loc declares it written; add {param.position} to const_loc, or "
                f"pass const_loc=None to use the inferred read/write sets"
            )


def buffers_accept_any_offset(prim_func: PrimFunc) -> bool:
    """Whether every buffer parameter takes a view at any element offset: its elem_offset is a
    variable with offset_factor 1 (``T.match_buffer(..., offset_factor=1)``). Default buffers
    (``te.placeholder``) fix elem_offset to 0, and the built code then requires byte_offset 0.
    """
    from tvm import tirx

    for param in prim_func.params:
        buffer = param.ty  # TVM 0.27: a buffer parameter's Var carries its BufferType
        if not isinstance(buffer, tirx.BufferType):
            continue
        if isinstance(buffer.elem_offset, tirx.IntImm) or int(buffer.offset_factor) > 1:
            return False
    return True
