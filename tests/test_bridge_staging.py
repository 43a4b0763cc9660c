"""Every view MXNet can produce gives the right answer with any kernel: a kernel that needs
byte_offset 0 (TVM's default buffers) gets misaligned views through an aligned copy made on
the engine thread; a kernel known to accept offsets gets the view itself, with nothing copied.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bridge_cffi
from conftest import REPO, needs_tvm_0_27, run_python
from kernels_tvm import add_into, add_into_default, default_add_prim_func

ENGINES = ["ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine"]


def _staged() -> int:
    return int(bridge_cffi.read_counters()["views_staged"])


@pytest.mark.parametrize(
    ("dtype", "offsets"), [("int8", range(1, 64)), ("float32", range(4, 64, 4))]
)
def test_views_at_every_byte_offset_of_a_line_give_numpy_results(
    dtype: str, offsets: range
) -> None:
    add = bridge_cffi.to_mxnet_func(add_into_default(dtype), const_loc=[0, 1])
    size = np.dtype(dtype).itemsize
    base = (np.arange(256) % 50).astype(dtype)
    x = mx.nd.array(base, dtype=dtype)
    for offset in offsets:
        start = offset // size
        out = mx.nd.zeros((24,), dtype=dtype)
        add(x[start : start + 24], x[start + 100 : start + 124], out)
        expected = base[start : start + 24] + base[start + 100 : start + 124]
        np.testing.assert_array_equal(out.asnumpy(), expected, err_msg=f"byte offset {offset}")


def test_misaligned_output_view_is_copied_back_and_nothing_else_changes() -> None:
    add = bridge_cffi.to_mxnet_func(add_into_default("float32"), const_loc=[0, 1])
    before = _staged()
    out = mx.nd.array(np.full(40, -1.0, dtype="float32"))
    add(mx.nd.ones((20,)), mx.nd.ones((20,)), out[1:21])
    expected = np.full(40, -1.0, dtype="float32")
    expected[1:21] = 2.0
    np.testing.assert_array_equal(out.asnumpy(), expected)
    assert _staged() == before + 1  # only the misaligned output


def test_aligned_views_and_whole_arrays_are_not_copied() -> None:
    add = bridge_cffi.to_mxnet_func(add_into_default("float32"), const_loc=[0, 1])
    x = mx.nd.array(np.arange(64, dtype="float32"))
    before = _staged()
    out = mx.nd.zeros((16,))
    add(x[16:32], x[32:48], out)  # 64 and 128 bytes in: aligned
    np.testing.assert_array_equal(out.asnumpy(), np.arange(16, 32) + np.arange(32, 48))
    assert _staged() == before


@needs_tvm_0_27
def test_unbuilt_default_buffers_are_staged_and_match_buffers_are_not() -> None:
    import tvm

    from kernels_tvm import _ADD_INTO_SOURCE

    x = mx.nd.array(np.arange(64, dtype="float32"))
    default = bridge_cffi.to_mxnet_func(default_add_prim_func())
    assert not default.kernel.accepts_byte_offset
    np.testing.assert_array_equal(default(x[1:11], x[21:31]).asnumpy(),
                                  np.arange(1, 11) + np.arange(21, 31))
    offsets = bridge_cffi.to_mxnet_func(tvm.script.from_source(_ADD_INTO_SOURCE))
    assert offsets.kernel.accepts_byte_offset  # offset_factor=1 buffers: nothing copied
    before = _staged()
    np.testing.assert_array_equal(offsets(x[1:11], x[21:31]).asnumpy(),
                                  np.arange(1, 11) + np.arange(21, 31))
    assert _staged() == before


def test_c_kernels_declare_whether_they_take_byte_offset(c_kernel_library: Path) -> None:
    declaring = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel_library), [0])
    aligned_only = bridge_cffi.to_mxnet_func(
        bridge_cffi.load_c_kernel(c_kernel_library, "aligned_only_create"), [0]
    )
    assert declaring.kernel.accepts_byte_offset and not aligned_only.kernel.accepts_byte_offset
    x = mx.nd.array(np.arange(40, dtype="float32"))
    for f in (declaring, aligned_only):
        before = _staged()
        out = mx.nd.zeros((40,))
        f(x[3:13], out[5:15], 2.0)
        np.testing.assert_array_equal(out.asnumpy()[5:15], np.arange(3, 13) * 2.0)
        assert _staged() - before == (0 if f is declaring else 2)


def test_built_modules_are_staged_even_when_their_buffers_would_accept_offsets() -> None:
    # A built module keeps no record of its buffers (TVM 0.27's function metadata is empty),
    # so the bridge cannot know: it stages, which is always right.
    add = bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1])
    assert not add.kernel.accepts_byte_offset
    x = mx.nd.array(np.arange(40, dtype="float32"))
    out = mx.nd.zeros((10,))
    add(x[1:11], x[2:12], out)
    np.testing.assert_array_equal(out.asnumpy(), np.arange(1, 11) + np.arange(2, 12))


def test_staging_is_said_once_at_debug_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="bridge_cffi"):
        bridge_cffi.to_mxnet_func(add_into_default("float32"), const_loc=[0, 1], name="said")
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("said:")]
    assert len(said) == 1 and "staged through an aligned copy" in said[0]


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(1, 300),
    data=st.data(),
)
def test_random_views_of_random_arrays_give_numpys_answer(length: int, data: st.DataObject) -> None:
    add = bridge_cffi.to_mxnet_func(add_into_default("float32"), const_loc=[0, 1])
    total = data.draw(st.integers(3 * length, 3 * length + 80), label="array length")
    values = np.asarray(
        data.draw(st.lists(st.integers(-1000, 1000), min_size=total, max_size=total)),
        dtype="float32",
    )
    starts = [data.draw(st.integers(0, total - length), label=f"start {i}") for i in range(3)]
    array = mx.nd.array(values)
    out_base = mx.nd.zeros((total,))
    a, b, o = starts
    add(array[a : a + length], array[b : b + length], out_base[o : o + length])
    expected = np.zeros(total, dtype="float32")
    expected[o : o + length] = values[a : a + length] + values[b : b + length]
    np.testing.assert_array_equal(out_base.asnumpy(), expected)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_view_kind_under_every_engine_type(engine: str) -> None:
    done = run_python(
        f"import runpy; runpy.run_path({str(REPO / 'tests' / 'staging_scenarios.py')!r}, "
        "run_name='__main__')",
        env={"MXNET_ENGINE_TYPE": engine},
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results == dict.fromkeys(results, True) and len(results) == 8, results
