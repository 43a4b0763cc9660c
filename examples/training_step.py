"""A Gluon MLP trained with Adam, its update rule one fused TVM kernel run through the bridge.

Trains the same model from the same initial weights on the same batches twice: once with
MXNet's native Adam (``gluon.Trainer``), once with ``BridgedAdam``, whose whole update rule
(rescale, weight decay, both moments, bias correction, weight step) is one TVM kernel per
parameter array, pushed asynchronously to MXNet's engine. The kernel is un-built TVMScript:
the bridge infers that the weight and both moments are updated in place and the gradient is
only read, so no ``const_loc`` is written by hand. Prints the final losses and ms per step.

Run: ``.venv/bin/python examples/training_step.py [--steps N]``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import mxnet as mx
import numpy as np
import tvm
from mxnet import autograd, gluon

import bridge_cffi
from bridge_cffi.mxnet.interface import MxnetFunc

# Final full-data losses of the two runs must agree within this relative tolerance. The kernel
# repeats MXNet's adam_update arithmetic operation for operation (bias correction in float64,
# the rest in float32), and on our machines both runs give bit-identical losses; the margin is
# for a CPU or LLVM version that contracts a*b+c into FMAs, where one-ulp differences per step
# can grow through training.
LOSS_RTOL = 1e-3

# lr, beta1, beta2 and t are float64, as in mx.optimizer.Adam, which computes the bias
# correction in Python floats and hands adam_update float32 parameters: the kernel does the
# same in one place, so its float32 arithmetic matches MXNet's operation for operation.
_ADAM_TEMPLATE = """
@T.prim_func
def adam_update_{ndim}d(w: T.handle, g: T.handle, m: T.handle, v: T.handle, lr: T.float64,
                        beta1: T.float64, beta2: T.float64, epsilon: T.float32, wd: T.float32,
                        rescale_grad: T.float32, t: T.float64):
{dims}
    W = T.match_buffer(w, ({shape}), "float32", offset_factor=1)
    G = T.match_buffer(g, ({shape}), "float32", offset_factor=1)
    M = T.match_buffer(m, ({shape}), "float32", offset_factor=1)
    V = T.match_buffer(v, ({shape}), "float32", offset_factor=1)
    lr_t = T.Cast("float32", lr * T.sqrt(T.float64(1) - T.pow(beta2, t))
                  / (T.float64(1) - T.pow(beta1, t)))
    b1 = T.Cast("float32", beta1)
    b2 = T.Cast("float32", beta2)
    for {index} in T.grid({shape}):
        grad = G[{index}] * rescale_grad + W[{index}] * wd
        M[{index}] = b1 * M[{index}] + (T.float32(1) - b1) * grad
        V[{index}] = b2 * V[{index}] + (T.float32(1) - b2) * grad * grad
        W[{index}] = W[{index}] - lr_t * M[{index}] / (T.sqrt(V[{index}]) + epsilon)
"""


def adam_source(ndim: int) -> str:
    """TVMScript of the fused Adam update for float32 arrays of ``ndim`` dimensions, any shape."""
    names = [f"d{axis}" for axis in range(ndim)]
    return _ADAM_TEMPLATE.format(
        ndim=ndim,
        dims="\n".join(f"    {name} = T.int64()" for name in names),
        shape=", ".join(names) + ("," if ndim == 1 else ""),
        index=", ".join(f"i{axis}" for axis in range(ndim)),
    )


@cache
def adam_kernel(ndim: int) -> MxnetFunc:
    """The fused Adam update for ``ndim``-D arrays, wrapped for MXNet's engine (built once)."""
    return bridge_cffi.to_mxnet_func(tvm.script.from_source(adam_source(ndim)),
                                     name=f"bridged_adam_{ndim}d")


def _zeros_like(array: Any) -> Any:
    """Zeros of the same shape, dtype, context and array type (mx.nd or mx.np)."""
    zeros = mx.np.zeros if isinstance(array, mx.np.ndarray) else mx.nd.zeros
    return zeros(array.shape, dtype=array.dtype, ctx=array.context)


class BridgedAdam:
    """Adam with MXNet's semantics (``mx.optimizer.Adam``), one bridged kernel per array."""

    def __init__(self, params: gluon.ParameterDict, learning_rate: float = 1e-3,
                 beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                 wd: float = 0.0) -> None:
        self.params = [p for p in params.values() if p.grad_req != "null"]
        self.hyper = (learning_rate, beta1, beta2, epsilon, wd)
        self.states = [(_zeros_like(p.data()), _zeros_like(p.data())) for p in self.params]
        self.kernels = [adam_kernel(len(p.shape)) for p in self.params]
        self.t = 0

    def step(self, batch_size: int) -> None:
        """Update every parameter from its gradient: pushes one operation per array, no waits."""
        self.t += 1
        lr, beta1, beta2, epsilon, wd = self.hyper
        for kernel, param, (mean, var) in zip(self.kernels, self.params, self.states, strict=True):
            kernel(param.data(), param.grad(), mean, var, lr, beta1, beta2, epsilon, wd,
                   1.0 / batch_size, float(self.t))


@dataclass
class RunResult:
    """What one training run produced."""

    name: str
    final_loss: float  # mean squared error / 2 over the whole data set after training
    losses: list[float]  # per-step batch loss
    ms_per_step: float  # forward + backward + update, averaged over the timed steps
    ms_per_update: float  # the optimizer update alone, averaged over repeated updates


def make_data(
    seed: int, samples: int = 2048, features: int = 16
) -> tuple[np.typing.NDArray[np.float32], np.typing.NDArray[np.float32]]:
    """A synthetic non-linear regression problem."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, features)).astype("float32")
    w = rng.standard_normal((features, 1)).astype("float32")
    y = np.tanh(x @ w) + 0.1 * np.sin(3 * x[:, :1]) + 0.01 * rng.standard_normal((samples, 1))
    return x, y.astype("float32")


#: Activations ``make_model`` offers: MXNet's relu, or the TVM swish of
#: ``examples/hybrid_operator.py`` registered as an MXNet operator through the bridge.
ACTIVATIONS = ("relu", "swish")

#: swish(x) = x * sigmoid(SWISH_BETA * x); beta 1 is the common SiLU.
SWISH_BETA = 1.0


class BridgedSwish(gluon.HybridBlock):  # type: ignore[misc]
    """The activation ``x * sigmoid(beta * x)`` as the bridged operator ``F.bridge.swish``."""

    def __init__(self, beta: float = SWISH_BETA, **kwargs: Any) -> None:
        # Imported here: the relu model and its callers need neither the operator nor its file.
        from hybrid_operator import register_swish

        register_swish()
        super().__init__(**kwargs)
        self._beta = beta

    def hybrid_forward(self, F: Any, x: Any) -> Any:  # noqa: N803 - Gluon's name
        """One bridged operator call (forward; its TVM gradient kernel on backward)."""
        return F.bridge.swish(x, beta=self._beta)


def make_model(seed: int, features: int = 16, hidden: int = 64,
               activation: str = "relu") -> gluon.nn.HybridSequential:
    """A three-layer MLP with deterministic initial weights; its two hidden layers use
    ``activation``, one of :data:`ACTIVATIONS` (``"swish"``: a bridged operator each).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
    mx.random.seed(seed)
    net = gluon.nn.HybridSequential()
    if activation == "relu":
        net.add(gluon.nn.Dense(hidden, activation="relu", in_units=features),
                gluon.nn.Dense(hidden, activation="relu", in_units=hidden),
                gluon.nn.Dense(1, in_units=hidden))
    else:
        net.add(gluon.nn.Dense(hidden, in_units=features), BridgedSwish(),
                gluon.nn.Dense(hidden, in_units=hidden), BridgedSwish(),
                gluon.nn.Dense(1, in_units=hidden))
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    return net


def copy_model(source: gluon.nn.HybridSequential, seed: int,
               hidden: int = 64) -> gluon.nn.HybridSequential:
    """A second model with the same architecture and a copy of ``source``'s weights."""
    net = make_model(seed + 1, hidden=hidden)
    for mine, theirs in zip(net.collect_params().values(), source.collect_params().values(),
                            strict=True):
        mine.set_data(theirs.data().copy())
    return net


def _train(name: str, net: Any, update: Any, x: np.typing.NDArray[np.float32],
           y: np.typing.NDArray[np.float32], steps: int, batch_size: int) -> RunResult:
    loss_fn = gluon.loss.L2Loss()
    xs, ys = mx.nd.array(x), mx.nd.array(y)
    batches = len(x) // batch_size
    batch_losses = []
    mx.nd.waitall()
    started = time.perf_counter()
    for step in range(steps):
        b = step % batches
        xb = xs[b * batch_size:(b + 1) * batch_size]
        yb = ys[b * batch_size:(b + 1) * batch_size]
        with autograd.record():
            loss = loss_fn(net(xb), yb)
        loss.backward()
        update(batch_size)
        batch_losses.append(loss.mean())
    mx.nd.waitall()
    elapsed = time.perf_counter() - started
    final = float(loss_fn(net(xs), ys).mean().asscalar())
    return RunResult(name, final, [float(v.asscalar()) for v in batch_losses],
                     1e3 * elapsed / steps, float("nan"))


def _time_updates(update: Any, batch_size: int, repeats: int) -> float:
    mx.nd.waitall()
    started = time.perf_counter()
    for _ in range(repeats):
        update(batch_size)
    mx.nd.waitall()
    return 1e3 * (time.perf_counter() - started) / repeats


def compare(steps: int = 300, seed: int = 0, batch_size: int = 64, learning_rate: float = 1e-3,
            wd: float = 1e-4, update_repeats: int = 200,
            hidden: int = 64) -> tuple[RunResult, RunResult]:
    """Train natively and with the bridged Adam from the same start; return both results."""
    x, y = make_data(seed)
    native_net = make_model(seed, hidden=hidden)
    bridged_net = copy_model(native_net, seed, hidden=hidden)
    hyper = {"learning_rate": learning_rate, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
             "wd": wd}

    trainer = gluon.Trainer(native_net.collect_params(), "adam", dict(hyper))
    bridged = BridgedAdam(bridged_net.collect_params(), **hyper)
    native = _train("native mx.optimizer.Adam", native_net, trainer.step, x, y, steps, batch_size)
    ours = _train("bridged fused TVM Adam", bridged_net, bridged.step, x, y, steps, batch_size)
    # The update alone, repeated on the trained models (which it keeps changing: timing only).
    # Trainer.step refuses gradients no backward refreshed, so time the updater it calls.
    updater = mx.optimizer.get_updater(mx.optimizer.Adam(rescale_grad=1.0 / batch_size, **hyper))
    native_params = list(native_net.collect_params().values())

    def native_update(_: int) -> None:
        for index, param in enumerate(native_params):
            updater(index, param.grad(), param.data())

    native.ms_per_update = _time_updates(native_update, batch_size, update_repeats)
    ours.ms_per_update = _time_updates(bridged.step, batch_size, update_repeats)
    return native, ours


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print it; return 0 when the final losses agree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=64, help="width of the two hidden layers")
    args = parser.parse_args(argv)
    native, ours = compare(steps=args.steps, seed=args.seed, hidden=args.hidden)
    relative = abs(ours.final_loss - native.final_loss) / abs(native.final_loss)
    print(f"bridge_cffi training step: 16-{args.hidden}-{args.hidden}-1 MLP, Adam, batch 64, "
          f"{args.steps} steps, "
          f"seed {args.seed}")
    print(f"  MXNet {mx.__version__}, TVM {tvm.__version__}")
    print(f"  {'optimizer':<28}{'first loss':>12}{'final loss':>14}{'ms/step':>10}"
          f"{'ms/update':>11}")
    for run in (native, ours):
        print(f"  {run.name:<28}{run.losses[0]:>12.6f}{run.final_loss:>14.8f}"
              f"{run.ms_per_step:>10.3f}{run.ms_per_update:>11.3f}")
    matches = relative <= LOSS_RTOL
    print(f"  final losses agree within rtol {LOSS_RTOL:g}: {matches} (relative difference "
          f"{relative:.2e})")
    return 0 if matches else 1


if __name__ == "__main__":
    raise SystemExit(main())
