"""mx.np arrays work wherever mx.nd arrays do: inferred outputs, in place, autograd, training."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import tvm

import bridge_cffi
from conftest import run_python
from test_autograd_bridged import scaled_sigmoid, tanh_scale
from test_inference_tvm import IN_PLACE_SOURCE, SPLIT_SOURCE, scaled_add_te


def test_outputs_are_mx_np_arrays_when_an_input_is_one() -> None:
    f = bridge_cffi.to_mxnet_func(scaled_add_te())
    z = f(mx.np.arange(4, dtype="float32"), mx.np.ones(4), 2.0)
    assert isinstance(z, mx.np.ndarray)
    np.testing.assert_allclose(z.asnumpy(), [2.0, 4.0, 6.0, 8.0])
    mixed = f(mx.nd.ones(3), mx.np.ones(3), 1.0)  # one mx.np input is enough
    assert isinstance(mixed, mx.np.ndarray)
    np.testing.assert_allclose((mixed + mx.np.ones(3)).asnumpy(), [3.0] * 3)


def test_several_mx_np_outputs() -> None:
    f = bridge_cffi.to_mxnet_func(tvm.script.from_source(SPLIT_SOURCE))
    a = np.array([[1.0, -1.0], [2.0, 3.0]], dtype="float32")
    outputs = f(mx.np.array(a))
    assert all(isinstance(o, mx.np.ndarray) for o in outputs)
    np.testing.assert_allclose(outputs[0].asnumpy(), [0.0, 5.0])


def test_mx_np_array_updated_in_place() -> None:
    f = bridge_cffi.to_mxnet_func(tvm.script.from_source(IN_PLACE_SOURCE))
    x = mx.np.array([1.0, 2.0], dtype="float32")
    y = f(x, 0.5)
    np.testing.assert_allclose(x.asnumpy(), [1.5, 2.5])
    np.testing.assert_allclose(y.asnumpy(), [1.0, 2.0])


def test_autograd_with_mx_np_arrays_matches_mx_np_ops() -> None:
    grads = []
    for use_bridge in (True, False):
        x = mx.np.array(np.linspace(-2, 2, 5), dtype="float64")
        w = mx.np.array(np.linspace(1, 3, 5), dtype="float64")
        x.attach_grad()
        w.attach_grad()
        with mx.autograd.record():
            y = tanh_scale()(x, w) if use_bridge else mx.np.tanh(x) * w
            loss = (y * y).sum()
        loss.backward()
        assert isinstance(y, mx.np.ndarray)
        grads.append((x.grad.asnumpy(), w.grad.asnumpy()))
    for ours, native in zip(*grads, strict=True):
        np.testing.assert_allclose(ours, native, rtol=1e-12)


def test_autograd_with_saved_outputs_and_mx_np_arrays() -> None:
    x = mx.np.array(np.linspace(-1, 1, 4), dtype="float32")
    x.attach_grad()
    with mx.autograd.record():
        y = scaled_sigmoid()(x, 2.0)
    y.backward()
    s = 1 / (1 + np.exp(-2 * np.linspace(-1, 1, 4)))
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * s * (1 - s), rtol=1e-5)


# Gluon in numpy mode (npx.set_np is process-wide, hence its own interpreter): the fused Adam
# from the training example against Gluon's Trainer, on mx.np parameters and gradients.
NP_TRAINING = r"""
import runpy
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
mx.npx.set_np()
example = runpy.run_path("examples/training_step.py")
x, y = example["make_data"](0, samples=256)
xs, ys = mx.np.array(x), mx.np.array(y)
nets = []
for seed in (0, 0):
    mx.random.seed(seed)
    net = gluon.nn.Dense(1, in_units=16)
    net.initialize(mx.init.Xavier())
    nets.append(net)
hyper = {"learning_rate": 1e-2, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "wd": 0.0}
trainer = gluon.Trainer(nets[0].collect_params(), "adam", dict(hyper))
bridged = example["BridgedAdam"](nets[1].collect_params(), **hyper)
assert all(isinstance(m, mx.np.ndarray) for state in bridged.states for m in state)
losses = []
for net, step in ((nets[0], trainer.step), (nets[1], bridged.step)):
    for i in range(50):
        with autograd.record():
            loss = ((net(xs) - ys) ** 2).mean()
        loss.backward()
        step(1)
    losses.append(float(loss))
print("losses", losses)
assert isinstance(nets[1].weight.data(), mx.np.ndarray)
np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
np.testing.assert_allclose(nets[1].weight.data().asnumpy(), nets[0].weight.data().asnumpy(),
                           rtol=1e-4, atol=1e-6)
"""


def test_gluon_numpy_mode_training_with_the_bridged_adam_matches_native() -> None:
    done = run_python(NP_TRAINING)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "losses" in done.stdout
