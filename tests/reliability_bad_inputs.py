"""Bad-input fuzzing with hypothesis: random argument lists and const_loc values for three
bridged functions. Run in a subprocess (a crash or a hang must not take pytest down):

    python tests/reliability_bad_inputs.py --c-kernel libscale_kernels.so --examples 300

Every example ends in exactly one of:
- ``ok``: the call was pushed and the output holds the right values;
- ``refused``: a bridge_cffi exception (TypeError/ValueError subclass) with a message, raised
  by to_mxnet_func or the call, and ``ops_pushed`` did not move;
- ``kernel_error``: the bridge cannot know a C kernel's expected dtypes and sizes, so the
  kernel checks them on the engine thread: MXNetError at the next wait, naming the operation
  ("bridge_cffi: <name> failed: ..."). For TVM-compiled functions the bridge reads their
  embedded signature and refuses such calls up front.
What the bridge can check itself (argument types, int64 range, storage type, device, const_loc,
a C kernel's arity) must be ``refused``; a call that is valid for the kernel must be ``ok``;
an invalid one must never end ``ok``. Each example runs under a faulthandler watchdog.
Prints one JSON object of outcome counts as its last line; exits non-zero on a violation.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import math
import numbers
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mxnet as mx
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mxnet.base import MXNetError

import bridge_cffi
from kernels_tvm import add_into, scaled_add

DTYPES = ["float32"] * 5 + ["float64", "float16", "int32", "int64", "int8", "uint8", "bool"]
SHAPES = [(4,)] * 4 + [(5,), (2, 2), (1,), (0,), (3, 4)]
DEVICES = {"cpu0": (mx.cpu(0), ("cpu", 0)), "cpu1": (mx.cpu(1), ("cpu", 1)),
           "pinned0": (mx.cpu_pinned(0), ("cpu", 0))}
WATCHDOG_SECONDS = 60
OUTCOMES: Counter[str] = Counter()


@dataclass
class Array:
    """A generated NDArray and what the oracle needs to know about it."""

    value: Any
    before: np.typing.NDArray[np.float32] | None  # dense values at creation (None for sparse)
    dtype: str
    shape: tuple[int, ...]
    device: tuple[str, int]
    dense: bool
    spec: str


def build_array(dtype: str, shape: tuple[int, ...], device: str, stype: str,
                view: str) -> Array | None:
    """The array, or None when MXNet itself refuses to build it (e.g. csr for 1-D)."""
    ctx, family = DEVICES[device]
    size = int(np.prod(shape))
    values = ((np.arange(size) % 7) - 3).astype(dtype).reshape(shape)
    spec = f"{dtype}{list(shape)}@{device}/{stype}/{view}"
    try:
        if view == "mx.np":
            array = mx.np.array(values, dtype=dtype, ctx=ctx)
        else:
            array = mx.nd.array(values, dtype=dtype, ctx=ctx)
        if stype != "default":
            sparse = array.tostype(stype)
            sparse.wait_to_read()  # MXNet refuses some conversions only when they run
            return Array(sparse, None, dtype, shape, family, False, spec)
        if view == "slice" and shape and shape[0] > 1:
            array = array[1:]
            values = values[1:]
        if view == "scalar_np":
            array = mx.np.array(values.reshape(-1)[0] if size else 0, dtype=dtype, ctx=ctx)
            values = np.array(values.reshape(-1)[0] if size else 0, dtype=dtype)
        array.wait_to_read()
        return Array(array, values.copy(), dtype, tuple(values.shape), family, True, spec)
    except (MXNetError, ValueError, TypeError, AttributeError):
        return None


any_arrays = st.builds(build_array, st.sampled_from(DTYPES), st.sampled_from(SHAPES),
                   st.sampled_from(["cpu0"] * 4 + ["cpu1", "pinned0"]),
                   st.sampled_from(["default"] * 8 + ["csr", "row_sparse"]),
                   st.sampled_from(["whole"] * 4 + ["slice", "mx.np", "scalar_np"])
                   ).filter(lambda array: array is not None)
# Arrays every kernel here computes on, so that a good share of the calls are valid.
good_arrays = st.builds(build_array, st.just("float32"), st.just((4,)),
                        st.sampled_from(["cpu0", "cpu0", "pinned0"]), st.just("default"),
                        st.sampled_from(["whole", "whole", "mx.np"]))


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any],
           percent: int) -> st.SearchStrategy[Any]:
    """``usual`` about ``percent``% of the time (one_of would merge repeated branches)."""
    return st.integers(0, 99).flatmap(lambda roll: usual if roll < percent else other)


arrays = mostly(good_arrays, any_arrays, 70)
floats = st.one_of(st.sampled_from([0.0, 1.0, -2.5, math.nan, math.inf, -math.inf]),
                   st.floats(-1e30, 1e30), st.builds(np.float32, st.floats(-1e6, 1e6)))
ints = st.one_of(st.integers(-10, 10),
                 st.sampled_from([2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**30]),
                 st.builds(np.int64, st.integers(-5, 5)))
others = st.sampled_from([None, "text", b"bytes", [1.0, 2.0], (1,), np.zeros(4, "float32"),
                          1 + 2j, object(), {"a": 1}])
any_argument = st.one_of(arrays, floats, ints, st.booleans(), others)
const_locs = st.one_of(
    st.none(), st.lists(st.integers(-1, 5), max_size=4),
    st.sampled_from(["01", 3, [1.5], [True], (0, 1)]))


@dataclass(frozen=True)
class Target:
    name: str
    tensors: tuple[int, ...]   # positions the kernel expects to be float32 tensors
    scalar: int | None         # position of the float scalar, if any
    default_const: tuple[int, ...]
    arity_checked: bool        # the bridge knows the arity (C kernels declare it)
    # Compiled by TVM: the bridge reads the embedded signature and refuses at the call what
    # the kernel would refuse (count, kinds, dtypes, shapes).
    signature_checked: bool = False


TARGETS = {
    "add_into": Target("add_into", (0, 1, 2), None, (0, 1), False, True),
    "scaled_add": Target("scaled_add", (0, 1, 2), 3, (0, 1), False, True),
    "c_scale": Target("c_scale", (0, 1), 2, (0,), True),
}


def is_real(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and not isinstance(value, numbers.Integral))


def bridge_must_refuse(target: Target, const_loc: Any, args: list[Any]) -> bool:
    """What the bridge itself can see is wrong, before any push."""
    if const_loc is not None:
        if isinstance(const_loc, (str, bytes)) or not hasattr(const_loc, "__iter__"):
            return True
        positions = list(const_loc)
        if any(isinstance(p, bool) or not isinstance(p, int) for p in positions):
            return True
        if any(p < 0 for p in positions) or len(set(positions)) != len(positions):
            return True
        arity = len(target.tensors) + (target.scalar is not None)
        if target.arity_checked and any(p >= arity for p in positions):
            return True  # refused at wrap time
        if any(p >= len(args) for p in positions):
            return True
        if any(not isinstance(args[p], Array) for p in positions):
            return True  # const_loc may only name arrays
    if target.arity_checked and len(args) != len(target.tensors) + 1:
        return True
    devices = set()
    for value in args:
        if isinstance(value, Array):
            if not value.dense:
                return True
            devices.add(value.device)
        elif isinstance(value, (bool, np.bool_)):
            continue
        elif isinstance(value, numbers.Integral):
            if not -(2**63) <= int(value) <= 2**63 - 1:
                return True
        elif not isinstance(value, numbers.Real):
            return True
    return len(devices) > 1


MAYBE = "maybe"


def kernel_accepts(target: Target, args: list[Any]) -> bool | str:
    """Whether the kernel computes on these arguments (it refuses anything else); MAYBE where
    TVM may convert an int or bool given for its float scalar (then the value must be right).
    """
    if len(args) != len(target.tensors) + (target.scalar is not None):
        return False
    tensors = [args[p] for p in target.tensors]
    if not all(isinstance(t, Array) and t.dense and t.dtype == "float32" for t in tensors):
        return False
    if target.name == "c_scale":  # checks its argument kinds, dtypes and sizes itself
        return tensors[0].before.size == tensors[1].before.size and is_real(args[2])
    if not all(len(t.shape) == 1 and t.shape == tensors[0].shape for t in tensors):
        return False
    # (scaled_add: sliced views into its default buffers are staged through an aligned copy.)
    if target.name == "scaled_add" and not is_real(args[3]):
        return MAYBE if isinstance(args[3], numbers.Integral) else False
    return True


def expected_output(target: Target, args: list[Any]) -> np.typing.NDArray[np.float32]:
    if target.name == "add_into":
        expected = args[0].before + args[1].before
    else:
        with np.errstate(all="ignore"):
            if target.name == "scaled_add":
                expected = (args[0].before + args[1].before) * np.float32(float(args[3]))
            else:
                expected = (args[0].before.astype(np.float64) * float(args[2])).astype(
                    np.float32).reshape(args[1].shape)
    return cast("np.typing.NDArray[np.float32]", expected)  # the pool's arrays are Any here


def plain(value: Any) -> Any:
    return value.value if isinstance(value, Array) else value


def describe(args: list[Any]) -> str:
    return ", ".join(a.spec if isinstance(a, Array) else repr(a) for a in args)


def check_example(functions: dict[str, Any], name: str, const_loc: Any, args: list[Any]) -> str:
    target = TARGETS[name]
    refuse = bridge_must_refuse(target, const_loc, args)
    accepts = not refuse and kernel_accepts(target, args)
    pushed_before = bridge_cffi.read_counters()["ops_pushed"]
    where = f"{name}(const_loc={const_loc!r}; {describe(args)})"
    try:
        wrapped = bridge_cffi.to_mxnet_func(functions[name], const_loc=const_loc)
        wrapped(*[plain(a) for a in args])
    except bridge_cffi.BridgeError as error:
        assert isinstance(error, (TypeError, ValueError)), f"{where}: {type(error)} {error}"
        assert str(error), f"{where}: empty message"
        assert bridge_cffi.read_counters()["ops_pushed"] == pushed_before, (
            f"{where}: refused with {error!r} after pushing")
        kernel_refuses = target.signature_checked and kernel_accepts(target, args) is False
        assert refuse or kernel_refuses or any(
            t.shape == (0,) for t in args if isinstance(t, Array)
        ), f"{where}: refused a valid call: {error}"
        return "refused"
    assert not refuse, f"{where}: accepted a call the bridge must refuse"
    assert bridge_cffi.read_counters()["ops_pushed"] == pushed_before + 1, where
    try:
        # synchronize(): waitall, then the error of an operation that wrote no array (MXNet
        # keeps exceptions on written variables only, so the bridge records those).
        bridge_cffi.synchronize()
    except MXNetError as error:
        assert accepts is not True, f"{where}: a valid call failed on the engine: {error}"
        assert f"bridge_cffi: {wrapped.name} failed" in str(error), f"{where}: unclear: {error}"
        return "kernel_error"
    assert accepts, f"{where}: an invalid call ran without an error"
    out = args[1] if name == "c_scale" else args[2]
    got = out.value.asnumpy()
    want = expected_output(target, args)
    assert got.shape == want.shape and np.array_equal(got, want, equal_nan=True), (
        f"{where}: got {got} want {want}")
    return "ok"


def argument_lists(target: Target) -> st.SearchStrategy[list[Any]]:
    """Mostly the right kind at each position (so many calls are valid), sometimes anything."""
    arity = len(target.tensors) + (target.scalar is not None)

    def at(position: int) -> st.SearchStrategy[Any]:
        right = arrays if position in target.tensors else floats
        return mostly(right, any_argument, 85)

    def lists(count: int) -> st.SearchStrategy[list[Any]]:
        return st.tuples(*[at(p) for p in range(count)]).map(list)

    return st.sampled_from([arity] * 10 + [0, 1, arity - 1, arity + 1]).flatmap(lists)


def fuzz_one_function(functions: dict[str, Any], name: str, target: Target,
                      examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(const_loc=mostly(st.just(list(target.default_const)), const_locs, 70),
           args=argument_lists(target))
    def run(const_loc: Any, args: list[Any]) -> None:
        faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
        try:
            OUTCOMES[f"{name}:{check_example(functions, name, const_loc, args)}"] += 1
        finally:
            faulthandler.cancel_dump_traceback_later()

    run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c-kernel", required=True)
    parser.add_argument("--examples", type=int, default=300, help="per function")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    functions = {"add_into": add_into(), "scaled_add": scaled_add(),
                 "c_scale": bridge_cffi.load_c_kernel(options.c_kernel)}
    for name, target in TARGETS.items():
        fuzz_one_function(functions, name, target, options.examples)
    counts = dict(sorted(OUTCOMES.items()))
    print(json.dumps({"examples": sum(counts.values()), "outcomes": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
