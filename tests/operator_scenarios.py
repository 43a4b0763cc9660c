"""Registered-operator scenarios run in a fresh interpreter per engine type.

``python tests/operator_scenarios.py`` prints one JSON object of results (and the bridge's
stderr lines go to stderr); tests/test_bridge_operators.py compares them with numpy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mxnet as mx
import numpy as np
from mxnet import gluon
from mxnet.base import MXNetError

import bridge_cffi
from operator_kernels import (
    compiled_scaled_add_op,
    scaled_add_op,
    sigmoid_op,
    tanh_scale_op,
)


class SigmoidNet(gluon.HybridBlock):  # type: ignore[misc]
    """Dense, the bridged sigmoid, Dense."""

    def __init__(self) -> None:
        super().__init__()
        with self.name_scope():
            self.first = gluon.nn.Dense(6, in_units=4)
            self.second = gluon.nn.Dense(3, in_units=6)

    def hybrid_forward(self, F: Any, x: Any) -> Any:  # noqa: N803 - gluon's parameter name
        return self.second(F.bridge.test_sigmoid(self.first(x), a=1.5))


def main() -> None:
    results: dict[str, object] = {}
    add, sigmoid, tanh_scale = scaled_add_op(), sigmoid_op(), tanh_scale_op()
    results["route"] = add.route
    x = mx.nd.array(np.arange(8, dtype="float32"))
    y = mx.nd.ones((8,))
    results["ndarray"] = add(x, y, scale=3.0).asnumpy().tolist()
    results["nd_custom"] = add.via_mxnet(x, y, scale=3.0).asnumpy().tolist()
    executor = mx.sym.bridge.test_scaled_add(mx.sym.var("x"), mx.sym.var("y"), scale=3.0).bind(
        mx.cpu(), {"x": x, "y": y}
    )
    results["symbol"] = executor.forward()[0].asnumpy().tolist()

    # Chains: a bridged operator's output feeds native operations and the next operator.
    chain = x
    for step in range(4):
        chain = add(chain * 2.0, y, scale=float(step + 1))
        chain = add.via_mxnet(chain, y, scale=0.5)
    results["chain"] = chain.asnumpy().tolist()

    a = mx.nd.array(np.linspace(-1, 1, 5), dtype="float64")
    w = mx.nd.array(np.arange(5), dtype="float64")
    a.attach_grad()
    w.attach_grad()
    with mx.autograd.record():
        out = tanh_scale(a, w)
    out.backward()
    results["tanh_grads"] = [a.grad.asnumpy().tolist(), w.grad.asnumpy().tolist()]

    net = SigmoidNet()
    net.initialize(mx.init.Xavier())
    data = mx.nd.array(np.random.default_rng(1).random((5, 4)), dtype="float32")
    with mx.autograd.record():
        eager = net(data)
    eager.backward()
    eager_grad = net.first.weight.grad().asnumpy()
    net.hybridize()
    with mx.autograd.record():
        hybrid = net(data)
    hybrid.backward()
    results["hybrid_matches"] = bool(
        np.allclose(eager.asnumpy(), hybrid.asnumpy(), atol=1e-6)
        and np.allclose(eager_grad, net.first.weight.grad().asnumpy(), atol=1e-6)
    )
    del sigmoid

    # A kernel refusing its arguments: the error reaches the next wait, later work runs.
    liar = compiled_scaled_add_op("test_lying_scaled_add", lie=True)
    raised_at = None
    try:
        wrong = liar.via_mxnet(x, y, scale=1.0)
        raised_at = "none yet"
        wrong.wait_to_read()
    except MXNetError as error:
        raised_at = raised_at or "call"
        results["error_type"] = type(error).__name__
        results["error_message"] = str(error)
    del liar
    results["error_raised_at"] = "wait" if raised_at == "none yet" else raised_at
    results["after_error"] = add(x, y, scale=1.0).asnumpy().tolist()
    mx.nd.waitall()
    results["all_released"] = bridge_cffi.wait_until_released()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
