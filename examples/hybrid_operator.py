"""A hybridized Gluon model whose activation is a TVM kernel registered as an MXNet operator.

``Swish`` (``x * sigmoid(beta * x)``) is written once in TVMScript with its gradient and
registered with ``bridge_cffi.register_op``; inside ``hybrid_forward`` it is
``F.bridge.swish(x, beta=...)``, so the block hybridizes, trains and exports like any Gluon
block. The script trains it and the same model with MXNet's own operations from the same
initial weights on the same batches, checks that both learn the same, exports the bridged
model (``HybridBlock.export``), loads it back with ``SymbolBlock.imports`` and checks its
predictions. Prints the final losses, ms per step and where the files went.

Run: ``.venv/bin/python examples/hybrid_operator.py [--steps N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
import tvm
from mxnet import autograd, gluon

import bridge_cffi

#: Both runs do the same float32 arithmetic in a different order (one fused kernel against
#: MXNet's two operations), so their losses drift apart by rounding only.
LOSS_RTOL = 1e-4
#: How far the reloaded model's predictions may be from the trained one's.
RELOAD_ATOL = 1e-6

SWISH = """
@T.prim_func
def swish(x: T.handle, beta: T.float32, y: T.handle):
    n = T.int64()
    m = T.int64()
    X = T.match_buffer(x, (n, m), "float32", offset_factor=1)
    Y = T.match_buffer(y, (n, m), "float32", offset_factor=1)
    for i, j in T.grid(n, m):
        Y[i, j] = X[i, j] * T.sigmoid(beta * X[i, j])
"""

SWISH_BACKWARD = """
@T.prim_func
def swish_backward(x: T.handle, beta: T.float32, dy: T.handle, dx: T.handle):
    n = T.int64()
    m = T.int64()
    X = T.match_buffer(x, (n, m), "float32", offset_factor=1)
    DY = T.match_buffer(dy, (n, m), "float32", offset_factor=1)
    DX = T.match_buffer(dx, (n, m), "float32", offset_factor=1)
    for i, j in T.grid(n, m):
        s = T.sigmoid(beta * X[i, j])
        DX[i, j] = DY[i, j] * (s + beta * X[i, j] * s * (T.float32(1) - s))
"""


@cache
def register_swish() -> Any:
    """Register ``swish`` once per process (its name is global to MXNet)."""
    pair = bridge_cffi.differentiable(
        tvm.script.from_source(SWISH), tvm.script.from_source(SWISH_BACKWARD)
    )
    return bridge_cffi.register_op("swish", pair)


class Model(gluon.HybridBlock):  # type: ignore[misc]
    """Dense(64), swish, Dense(64), swish, Dense(1): bridged swish or MXNet's own."""

    def __init__(self, bridged: bool, beta: float = 1.5) -> None:
        super().__init__()
        self._bridged = bridged
        self._beta = beta
        with self.name_scope():
            self.hidden1 = gluon.nn.Dense(64, in_units=8)
            self.hidden2 = gluon.nn.Dense(64, in_units=64)
            self.output = gluon.nn.Dense(1, in_units=64)

    def _swish(self, F: Any, x: Any) -> Any:  # noqa: N803 - Gluon's name
        if self._bridged:
            return F.bridge.swish(x, beta=self._beta)
        return x * F.sigmoid(self._beta * x)

    def hybrid_forward(self, F: Any, x: Any) -> Any:  # noqa: N803 - Gluon's name
        """Dense, swish, Dense, swish, Dense."""
        return self.output(self._swish(F, self.hidden2(self._swish(F, self.hidden1(x)))))


@dataclass
class Run:
    """What one training run measured."""

    final_loss: float
    ms_per_step: float
    model: Model


def _data(seed: int = 0) -> tuple[np.typing.NDArray[np.float32], np.typing.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((512, 8)).astype("float32")
    y = np.sin(x @ rng.standard_normal((8, 1))).astype("float32")
    return x, y


def train(bridged: bool, steps: int, batch: int = 64, seed: int = 0) -> Run:
    """Train the hybridized model with Adam from seed-determined weights; return its run."""
    if bridged:
        register_swish()
    mx.random.seed(seed)
    model = Model(bridged)
    model.initialize(mx.init.Xavier())
    model.hybridize(static_alloc=True)
    trainer = gluon.Trainer(model.collect_params(), "adam", {"learning_rate": 0.01})
    loss_fn = gluon.loss.L2Loss()
    x, y = _data(seed)
    started = time.perf_counter()
    for step in range(steps):
        rows = slice((step * batch) % len(x), (step * batch) % len(x) + batch)
        data, label = mx.nd.array(x[rows]), mx.nd.array(y[rows])
        with autograd.record():
            loss = loss_fn(model(data), label)
        loss.backward()
        trainer.step(batch)
    mx.nd.waitall()
    elapsed = time.perf_counter() - started
    final = float(loss_fn(model(mx.nd.array(x)), mx.nd.array(y)).mean().asscalar())
    return Run(final, elapsed / steps * 1e3, model)


def copy_weights(source: Model, target: Model) -> None:
    """Give ``target`` the parameters of ``source`` (same architecture)."""
    for theirs, ours in zip(source.collect_params().values(), target.collect_params().values(),
                            strict=True):
        ours.set_data(theirs.data())


def export_and_reload(model: Model, out: Path) -> tuple[Path, float]:
    """Export ``model``; load it back with SymbolBlock.imports; return the symbol file and the
    largest difference between the two models' predictions.
    """
    prefix = out / "swish_model"
    model.export(str(prefix))
    symbol_file = Path(f"{prefix}-symbol.json")
    loaded = gluon.SymbolBlock.imports(str(symbol_file), ["data"], f"{prefix}-0000.params")
    x = mx.nd.array(_data()[0])
    difference = float(np.abs(loaded(x).asnumpy() - model(x).asnumpy()).max())
    return symbol_file, difference


def main(argv: list[str] | None = None) -> int:
    """Train both models, compare them, export and reload the bridged one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="where to export (default: temp)")
    args = parser.parse_args(argv)
    native = train(bridged=False, steps=args.steps)
    bridged = train(bridged=True, steps=args.steps)
    print(f"operator: {register_swish()}")
    print(f"native swish : final loss {native.final_loss:.6f}, {native.ms_per_step:.3f} ms/step")
    print(f"bridged swish: final loss {bridged.final_loss:.6f}, {bridged.ms_per_step:.3f} ms/step")
    agree = abs(bridged.final_loss - native.final_loss) <= LOSS_RTOL * abs(native.final_loss)
    print(f"losses agree within rtol {LOSS_RTOL}: {agree}")
    out = args.out or Path(tempfile.mkdtemp(prefix="bridge_cffi_swish_"))
    out.mkdir(parents=True, exist_ok=True)
    symbol_file, difference = export_and_reload(bridged.model, out)
    print(f"exported {symbol_file}; reloaded predictions differ by at most {difference:.2e}")
    return 0 if agree and difference <= RELOAD_ATOL else 1


if __name__ == "__main__":
    raise SystemExit(main())
