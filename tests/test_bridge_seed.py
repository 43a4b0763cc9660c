"""The seed's use: (x + y) * scale built by TVM, run as an asynchronous MXNet operation."""

from __future__ import annotations

import runpy

import mxnet as mx
import numpy as np
import pytest

import bridge_cffi
from conftest import REPO, needs_mxnet_1_6
from kernels_tvm import scaled_add


def test_seed_example_matches_numpy() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
    x = mx.nd.array(np.random.uniform(size=100).astype("float32"))
    y = mx.nd.array(np.random.uniform(size=100).astype("float32"))
    z = mx.nd.empty((100,))
    assert f(x, y, z, 10.0) is None
    np.testing.assert_allclose(z.asnumpy(), (x.asnumpy() + y.asnumpy()) * 10.0, rtol=1e-6)


def test_seed_example_script_runs_and_reports_a_match(capsys: pytest.CaptureFixture[str]) -> None:
    module = runpy.run_path(str(REPO / "examples" / "seed_example.py"))
    assert module["main"]() == 0
    assert "matches numpy (x + y) * 10: True" in capsys.readouterr().out


def test_call_returns_before_the_operation_runs() -> None:
    # A write to z queued behind a slow native op on x: the bridged call must return while
    # the engine still holds z, i.e. it was pushed, not run.
    f = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
    x = mx.nd.ones((2_000_000,))
    for _ in range(20):
        x = mx.nd.sqrt(x * 1.0)
    y = mx.nd.ones((2_000_000,))
    z = mx.nd.empty((2_000_000,))
    before = bridge_cffi.read_counters()["ops_run"]
    f(x, y, z, 2.0)
    ran_at_return = bridge_cffi.read_counters()["ops_run"] - before
    z.wait_to_read()
    assert ran_at_return == 0
    assert bridge_cffi.read_counters()["ops_run"] - before == 1
    np.testing.assert_allclose(z.asnumpy()[:3], [4.0, 4.0, 4.0])


def test_profiler_name_defaults_to_the_entry_function() -> None:
    assert bridge_cffi.to_mxnet_func(scaled_add()).name == "main"
    assert bridge_cffi.to_mxnet_func(scaled_add(), name="scaled_add").name == "scaled_add"


@needs_mxnet_1_6
def test_mx_np_arrays_are_accepted() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1])
    x = mx.np.array(np.arange(8, dtype="float32"))
    y = mx.np.ones((8,))
    z = mx.np.zeros((8,))
    f(x, y, z, 3.0)
    np.testing.assert_allclose(z.asnumpy(), (np.arange(8) + 1) * 3.0)

