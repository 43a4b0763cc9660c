"""register_op: bridged kernels as named MXNet operators, imperative, in Symbols and in Gluon."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
import tvm
from mxnet import gluon
from mxnet.base import MXNetError

import bridge_cffi
from conftest import REPO, needs_tvm_0_27, run_python
from operator_kernels import (
    compiled_scaled_add_op,
    scaled_add_op,
    scaled_add_prim_func,
    sigmoid_op,
    tanh_scale_op,
)
from operator_scenarios import SigmoidNet

ENGINES = ["ThreadedEnginePerDevice", "ThreadedEngine", "NaiveEngine"]


def _sigmoid(v: np.typing.NDArray[np.float32]) -> np.typing.NDArray[np.float32]:
    return 1 / (1 + np.exp(-v))


@needs_tvm_0_27
def test_ndarray_calls_match_numpy() -> None:
    op = scaled_add_op()
    x = mx.nd.array(np.arange(6, dtype="float32"))
    y = mx.nd.array(np.full(6, 0.5, dtype="float32"))
    expected = (x.asnumpy() + 0.5) * 2.0
    np.testing.assert_allclose(op(x, y, scale=2.0).asnumpy(), expected)
    np.testing.assert_allclose(mx.nd.bridge.test_scaled_add(x, y, scale=2.0).asnumpy(), expected)
    np.testing.assert_allclose(op.via_mxnet(x, y, scale=2.0).asnumpy(), expected)
    assert op.inputs == ("x", "y") and op.outputs == ("z",)
    assert [s.name for s in op.scalars] == ["scale"]


@needs_tvm_0_27
def test_symbol_graph_infers_binds_and_runs() -> None:
    scaled_add_op()
    graph = mx.sym.bridge.test_scaled_add(mx.sym.var("x"), mx.sym.var("y"), scale=4.0)
    assert graph.list_arguments() == ["x", "y"]
    assert len(graph.list_outputs()) == 1
    arg_shapes, out_shapes, _ = graph.infer_shape(x=(7,), y=(7,))
    assert arg_shapes == [(7,), (7,)] and out_shapes == [(7,)]
    _, out_types, _ = graph.infer_type(x=np.float32, y=np.float32)
    assert out_types == [np.float32]
    x, y = mx.nd.array(np.arange(7)), mx.nd.ones(7)
    out = graph.bind(mx.cpu(), {"x": x, "y": y}).forward()[0]
    np.testing.assert_allclose(out.asnumpy(), (np.arange(7) + 1) * 4.0)


@needs_tvm_0_27
def test_shape_and_type_errors_are_clear_at_bind_time() -> None:
    scaled_add_op()
    graph = mx.sym.bridge.test_scaled_add(mx.sym.var("x"), mx.sym.var("y"), scale=1.0)
    with pytest.raises(MXNetError, match=r"bridge_cffi operator 'test_scaled_add': infer_shape: "
                       r"argument 1 \(y\): dimension 0 is n = 6, but argument 0 \(x\)"):
        graph.infer_shape(x=(5,), y=(6,))
    # simple_bind wraps MXNet's error in a RuntimeError of its own, keeping the message.
    with pytest.raises(RuntimeError, match=r"infer_shape: argument 0 \(x\): expected 1 dimensions"):
        graph.simple_bind(mx.cpu(), grad_req="null", x=(5, 2), y=(5, 2))
    with pytest.raises(MXNetError, match=r"infer_type: input 1 \(y\) must be float32, got float64"):
        graph.infer_type(x=np.float32, y=np.float64)


@needs_tvm_0_27
def test_attribute_errors_name_the_attribute() -> None:
    op = scaled_add_op()
    x = mx.nd.ones(3)
    with pytest.raises(bridge_cffi.BridgeTypeError, match=r"missing attribute.*scale"):
        op(x, x)
    with pytest.raises(bridge_cffi.BridgeTypeError, match=r"unknown attribute.*alpha.*scale"):
        op(x, x, scale=1.0, alpha=2.0)
    with pytest.raises(bridge_cffi.BridgeTypeError, match="attribute scale must be a float"):
        op(x, x, scale="big")
    with pytest.raises(bridge_cffi.BridgeTypeError, match="takes 2 input"):
        op(x, scale=1.0)
    with pytest.raises(bridge_cffi.BridgeTypeError, match=r"input 1 \(y\) must be a Symbol"):
        op(mx.sym.var("x"), x, scale=1.0)
    # Attributes written by hand (or in a symbol file) are checked in C when MXNet parses them.
    with pytest.raises(MXNetError, match="attribute 'scale' must be a float, got 'abc'"):
        _by_hand(op, mx.sym, mx.sym.var("x"), mx.sym.var("y"), scale="abc")
    with pytest.raises(MXNetError, match="missing the scalar attribute 'scale'"):
        _by_hand(op, mx.nd, x, x)


def _by_hand(op: bridge_cffi.RegisteredOp, module: object, *inputs: object, **attrs: str) -> object:
    """MXNet's own operator call with attributes as the user wrote them, unchecked by Python."""
    if op.route == "extension_library":
        return getattr(module, op.name)(*inputs, **attrs)
    return module.Custom(*inputs, op_type=op.name, **attrs)  # type: ignore[attr-defined]


@needs_tvm_0_27
def test_gradients_match_numpy() -> None:
    op = tanh_scale_op()
    xs, ws = np.linspace(-1.5, 1.5, 9), np.arange(9.0)
    x, w = mx.nd.array(xs, dtype="float64"), mx.nd.array(ws, dtype="float64")
    x.attach_grad()
    w.attach_grad()
    with mx.autograd.record():
        y = op(x, w)
        loss = (y * y).sum()
    loss.backward()
    dy = 2 * np.tanh(xs) * ws
    np.testing.assert_allclose(x.grad.asnumpy(), dy * ws * (1 - np.tanh(xs) ** 2))
    np.testing.assert_allclose(w.grad.asnumpy(), dy * np.tanh(xs))


@needs_tvm_0_27
def test_gradient_of_one_input_only() -> None:
    """An input that needs no gradient gets none written (MXNet asks for kNullOp there)."""
    op = tanh_scale_op()
    xs, ws = np.linspace(-1, 1, 5), np.arange(5.0)
    x, w = mx.nd.array(xs, dtype="float64"), mx.nd.array(ws, dtype="float64")
    x.attach_grad()
    with mx.autograd.record():
        y = op(x, w)
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), ws * (1 - np.tanh(xs) ** 2))


@needs_tvm_0_27
def test_gradient_with_a_scalar_and_saved_outputs() -> None:
    op = sigmoid_op()
    xs = np.linspace(-3, 3, 12, dtype="float32").reshape(3, 4)
    x = mx.nd.array(xs)
    x.attach_grad()
    with mx.autograd.record():
        y = op(x, a=0.75)
    y.backward()
    s = _sigmoid(0.75 * xs)
    np.testing.assert_allclose(y.asnumpy(), s, rtol=1e-6)
    np.testing.assert_allclose(x.grad.asnumpy(), 0.75 * s * (1 - s), rtol=1e-5, atol=1e-7)


def _net() -> SigmoidNet:
    sigmoid_op()
    net = SigmoidNet()
    net.initialize(mx.init.Xavier(), force_reinit=True)
    return net


def _forward_backward(
    net: SigmoidNet, data: mx.nd.NDArray
) -> tuple[np.typing.NDArray[np.float32], np.typing.NDArray[np.float32]]:
    with mx.autograd.record():
        out = net(data)
    out.backward()
    return out.asnumpy(), net.first.weight.grad().asnumpy()


@needs_tvm_0_27
def test_hybridized_block_matches_numpy_and_imperative() -> None:
    net = _net()
    data = mx.nd.array(np.random.default_rng(3).random((4, 4)), dtype="float32")
    eager_out, eager_grad = _forward_backward(net, data)
    w1, b1 = net.first.weight.data().asnumpy(), net.first.bias.data().asnumpy()
    w2, b2 = net.second.weight.data().asnumpy(), net.second.bias.data().asnumpy()
    hidden = _sigmoid(1.5 * (data.asnumpy() @ w1.T + b1))
    np.testing.assert_allclose(eager_out, hidden @ w2.T + b2, rtol=1e-5, atol=1e-6)
    net.hybridize()
    hybrid_out, hybrid_grad = _forward_backward(net, data)
    np.testing.assert_allclose(hybrid_out, eager_out, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hybrid_grad, eager_grad, rtol=1e-5, atol=1e-7)
    # dL/dW1 for L = sum(out): through the second layer, the sigmoid's derivative, the input.
    upstream = np.ones_like(eager_out) @ w2 * 1.5 * hidden * (1 - hidden)
    np.testing.assert_allclose(hybrid_grad, upstream.T @ data.asnumpy(), rtol=1e-4, atol=1e-6)


@needs_tvm_0_27
def test_export_and_import(tmp_path: Path) -> None:
    net = _net()
    net.hybridize()
    data = mx.nd.array(np.random.default_rng(4).random((2, 4)), dtype="float32")
    expected = net(data).asnumpy()
    net.export(str(tmp_path / "net"))
    symbol_file = tmp_path / "net-symbol.json"
    nodes = json.loads(symbol_file.read_text())["nodes"]
    route = sigmoid_op().route
    saved = [n["attrs"] for n in nodes if n["op"] in ("Custom", "test_sigmoid")]
    attrs = {"a": "1.5", "op_type": "test_sigmoid"} if route == "custom_op" else {"a": "1.5"}
    assert saved == [attrs]
    imported = gluon.SymbolBlock.imports(str(symbol_file), ["data"],
                                         str(tmp_path / "net-0000.params"))
    np.testing.assert_allclose(imported(data).asnumpy(), expected, rtol=1e-6)
    np.save(tmp_path / "data.npy", data.asnumpy())
    np.save(tmp_path / "expected.npy", expected)
    load = (
        "import sys, mxnet as mx, numpy as np; from mxnet import gluon\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r}); d = {str(tmp_path)!r}\n"
        "{register}"
        "block = gluon.SymbolBlock.imports(\n"
        "    d + '/net-symbol.json', ['data'], d + '/net-0000.params')\n"
        "out = block(mx.nd.array(np.load(d + '/data.npy'))).asnumpy()\n"
        "same = np.allclose(out, np.load(d + '/expected.npy'), rtol=1e-6)\n"
        "print('same' if same else 'differs')\n"
    )
    register = "from operator_kernels import sigmoid_op; sigmoid_op()\n"
    fresh = run_python(load.format(register=register))
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert fresh.stdout.split()[-1] == "same"
    unregistered = run_python(load.format(register=""))
    assert unregistered.returncode != 0
    assert "test_sigmoid" in unregistered.stderr.splitlines()[-1] or (
        "Cannot find custom operator test_sigmoid" in unregistered.stderr
    ), unregistered.stderr[-1500:]


def test_compiled_module_with_a_shape_rule() -> None:
    """Compiled code needs no un-built TVM path: this runs on TVM 0.25 and 0.26 too."""
    op = compiled_scaled_add_op()
    x, y = mx.nd.array(np.arange(4)), mx.nd.ones(4)
    np.testing.assert_allclose(op(x, y, scale=0.5).asnumpy(), (np.arange(4) + 1) * 0.5)
    graph = op(mx.sym.var("x"), mx.sym.var("y"), scale=0.5)
    out = graph.bind(mx.cpu(), {"x": x, "y": y}).forward()[0]
    np.testing.assert_allclose(out.asnumpy(), (np.arange(4) + 1) * 0.5)


def test_register_op_refuses_a_bad_name() -> None:
    with pytest.raises(bridge_cffi.BridgeValueError, match="name: expected an identifier"):
        bridge_cffi.register_op("not a name", object())


def test_compiled_code_needs_a_shape_rule() -> None:
    built = tvm.build(scaled_add_prim_func(), target="llvm")
    with pytest.raises(bridge_cffi.BridgeTypeError, match="infer_shape: compiled code"):
        bridge_cffi.register_op("test_no_rule", built, const_loc=[0, 1])


@needs_tvm_0_27
def test_a_buffer_updated_in_place_is_refused() -> None:
    in_place = tvm.script.from_source(
        "@T.prim_func\ndef bump(a: T.handle):\n    A = T.match_buffer(a, (4,), 'float32')\n"
        "    for i in range(4):\n        A[i] = A[i] + T.float32(1)\n"
    )
    with pytest.raises(bridge_cffi.BridgeValueError, match="updated in place"):
        bridge_cffi.register_op("test_in_place", in_place)


@needs_tvm_0_27
def test_copy_returns_the_operator_and_pickle_refuses() -> None:
    op = scaled_add_op()
    assert copy.copy(op) is op and copy.deepcopy(op) is op
    with pytest.raises(TypeError, match="register it again"):
        pickle.dumps(op)
    assert "test_scaled_add(x, y; scale: float32) -> z" in repr(op)


def _scenarios(engine: str, route: str) -> tuple[dict, str]:  # type: ignore[type-arg]
    done = run_python(
        "import runpy; runpy.run_path("
        f"{str(REPO / 'tests' / 'operator_scenarios.py')!r}, run_name='__main__')",
        env={"MXNET_ENGINE_TYPE": engine, "BRIDGE_CFFI_OPERATOR_ROUTE": route},
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _routes() -> list[str]:
    """Both routes where MXNet has both (1.9), else the custom-operator one."""
    from bridge_cffi.mxnet.operators import operator_route

    return ["custom_op", "extension_library"] if operator_route() == "extension_library" else [
        "custom_op"
    ]


@needs_tvm_0_27
@pytest.mark.parametrize("route", _routes())
@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_type(engine: str, route: str) -> None:
    got, stderr = _scenarios(engine, route)
    assert got["route"] == route
    expected = (np.arange(8) + 1) * 3.0
    for call in ("ndarray", "nd_custom", "symbol"):
        np.testing.assert_allclose(got[call], expected)
    chain = np.arange(8, dtype="float32")
    for step in range(4):
        chain = ((chain * 2.0 + 1) * (step + 1) + 1) * 0.5
    np.testing.assert_allclose(got["chain"], chain)
    xs, ws = np.linspace(-1, 1, 5), np.arange(5.0)
    np.testing.assert_allclose(got["tanh_grads"][0], ws * (1 - np.tanh(xs) ** 2))
    np.testing.assert_allclose(got["tanh_grads"][1], np.tanh(xs))
    assert got["hybrid_matches"]
    # NaiveEngine runs the operator inside the call, as it does MXNet's own.
    assert got["error_raised_at"] == ("call" if engine == "NaiveEngine" else "wait")
    assert got["error_type"] == "MXNetError"
    # The kernel's own words reach the user: in the MXNetError where MXNet carries a library's
    # messages (extension libraries), else on stderr (the custom-operator worker's CHECK).
    said = got["error_message"] if route == "extension_library" else stderr
    assert "bridge_cffi operator 'test_lying_scaled_add'" in said and "forward" in said
    assert "Mismatched z.shape[0]" in said
    np.testing.assert_allclose(got["after_error"], np.arange(8) + 1.0)
    assert got["all_released"]


def test_a_bridged_function_given_a_symbol_points_to_register_op() -> None:
    bridged = bridge_cffi.to_mxnet_func(tvm.build(scaled_add_prim_func(), target="llvm"),
                                        const_loc=[0, 1])
    with pytest.raises(bridge_cffi.BridgeTypeError, match=r"bridge_cffi.register_op"):
        bridged(mx.sym.var("x"), mx.sym.var("y"), mx.sym.var("z"), 1.0)


@needs_tvm_0_27
def test_a_name_registered_again_keeps_earlier_graphs_working() -> None:
    import gc

    first = bridge_cffi.register_op("test_registered_twice", scaled_add_prim_func())
    graph = first(mx.sym.var("x"), mx.sym.var("y"), scale=2.0)
    del first
    gc.collect()
    second = bridge_cffi.register_op("test_registered_twice", scaled_add_prim_func())
    assert graph.infer_shape(x=(3,), y=(3,))[1] == [(3,)]
    x = mx.nd.array(np.arange(3))
    np.testing.assert_allclose(second(x, x, scale=2.0).asnumpy(), np.arange(3) * 4.0)


@needs_tvm_0_27
def test_decorator_form_registers_the_function_it_decorates() -> None:
    decorate = bridge_cffi.register_op("test_decorated_scaled_add")
    op = decorate(scaled_add_prim_func())
    assert isinstance(op, bridge_cffi.RegisteredOp) and op.name == "test_decorated_scaled_add"
    x = mx.nd.array(np.arange(4))
    np.testing.assert_allclose(
        mx.nd.bridge.test_decorated_scaled_add(x, x, scale=0.5).asnumpy(), np.arange(4.0)
    )
