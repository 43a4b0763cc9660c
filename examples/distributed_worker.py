"""One worker of the distributed training example: its share of each batch, the bridged Adam.

Started by ``examples/distributed_training.py``, once per worker of a ``dist_sync`` job (with
``DMLC_*`` set by the launcher) and once on its own with ``--kvstore device`` for the
single-process reference. Each worker trains the model of ``examples/training_step.py`` (by
default with ``--activation swish``: a bridged TVM operator after each hidden layer) on its
slice of every global batch: ``gluon.Trainer(..., update_on_kvstore=False)`` sums the gradients
of all workers through the kvstore (push/pull), and the update runs locally on every worker as
``BridgedAdam``'s fused TVM kernels through the bridge. Then, for the benchmark row, it times
whole steps with that update against steps with the Trainer's own MXNet Adam update, in
alternating rounds of the same job. Writes ``worker<rank>.json`` (losses, counters, timings)
and ``worker<rank>.npz`` (final parameters) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

import bridge_cffi
from training_step import ACTIVATIONS, BridgedAdam, BridgedSwish, make_data, make_model


class ShardedSteps:
    """Training steps of one worker on its slice of each global batch, gradients summed over
    every worker by the Trainer's kvstore before the update.
    """

    def __init__(self, net: Any, trainer: gluon.Trainer, x: np.typing.NDArray[np.float32],
                 y: np.typing.NDArray[np.float32],
                 batch_size: int, rank: int, num_workers: int) -> None:
        if batch_size % num_workers:
            raise ValueError(f"batch size {batch_size} does not split into {num_workers} workers")
        self.net, self.trainer, self.batch_size = net, trainer, batch_size
        self.xs, self.ys = mx.nd.array(x), mx.nd.array(y)
        self.batches = len(x) // batch_size
        share = batch_size // num_workers
        self.offset, self.share = rank * share, share
        self.loss_fn = gluon.loss.L2Loss()
        self.step_index = 0

    def run(self, update: Callable[[int], None]) -> Any:
        """One step: forward and backward on this worker's slice of the next global batch, the
        gradients summed over all workers, then ``update(global batch size)``. Returns the
        slice's summed loss (an NDArray, not waited for).
        """
        start = (self.step_index % self.batches) * self.batch_size + self.offset
        self.step_index += 1
        xb, yb = self.xs[start:start + self.share], self.ys[start:start + self.share]
        with autograd.record():
            loss = self.loss_fn(self.net(xb), yb)
        loss.backward()
        self.trainer.allreduce_grads()
        # The summed gradient is that of the whole global batch: rescale by its size.
        update(self.batch_size)
        return loss.sum()

    def full_data_loss(self) -> float:
        """Mean loss over the whole data set with the current parameters."""
        return float(self.loss_fn(self.net(self.xs), self.ys).mean().asscalar())


def broadcast_initial_params(trainer: gluon.Trainer) -> None:
    """Have the Trainer put the parameters on the kvstore, and wait for every worker to pull
    them back, before the first gradient is pushed.

    MXNet 1.9.1's Trainer does this lazily inside the first ``allreduce_grads()``, right before
    the first gradient push of the same keys, and ``KVStoreDist`` on CPU sends a gradient from
    the gradient array itself instead of the key's buffer (``comm_buf = merged`` in
    ``PushImpl``), so that push does not wait for the pull of the weights: when it reaches the
    server first, the pull returns the summed gradient and it becomes the weight. Seen in about
    one job in three here, with MXNet's own Adam as with the bridged one; private calls because
    the Trainer has no public way to start its kvstore.
    """
    trainer._init_kvstore()
    trainer._init_params()
    mx.nd.waitall()


def _timed_ms_per_step(steps: ShardedSteps, update: Callable[[int], None], count: int) -> float:
    mx.nd.waitall()
    started = time.perf_counter()
    for _ in range(count):
        steps.run(update)
    mx.nd.waitall()
    return 1e3 * (time.perf_counter() - started) / count


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train with the bridged update, then time both updates; return what the worker saw."""
    kv = mx.kv.create(args.kvstore)
    hyper = {"learning_rate": args.learning_rate, "beta1": 0.9, "beta2": 0.999,
             "epsilon": 1e-8, "wd": args.wd}
    x, y = make_data(args.seed)
    net = make_model(args.seed, hidden=args.hidden, activation=args.activation)
    params = net.collect_params()
    trainer = gluon.Trainer(params, "adam", dict(hyper), kvstore=kv, update_on_kvstore=False)
    broadcast_initial_params(trainer)
    bridged = BridgedAdam(params, **hyper)
    steps = ShardedSteps(net, trainer, x, y, args.batch_size, kv.rank, kv.num_workers)

    mx.nd.waitall()
    before = bridge_cffi.read_counters()
    losses = []
    for step in range(args.steps):
        losses.append(steps.run(bridged.step))
        if step % 10 == 0:
            # Progress for the launcher's logs (and its fault injection).
            print(f"step {step}", flush=True)
    mx.nd.waitall()
    bridge_cffi.wait_until_released()
    after = bridge_cffi.read_counters()
    final_loss = steps.full_data_loss()
    final_params = [p.data().asnumpy() for p in params.values()]

    def native_update(batch_size: int) -> None:
        trainer.update(batch_size)

    # Alternating rounds, the order swapped each round, so that both see the same load.
    timings: dict[str, list[float]] = {"bridged": [], "native": []}
    updates = {"bridged": bridged.step, "native": native_update}
    for round_index in range(args.timing_rounds):
        order = ("bridged", "native") if round_index % 2 == 0 else ("native", "bridged")
        for name in order:
            timings[name].append(_timed_ms_per_step(steps, updates[name], args.timing_steps))

    out = Path(args.out)
    np.savez(out / f"worker{kv.rank}.npz", *final_params)
    return {
        "rank": kv.rank,
        "num_workers": kv.num_workers,
        "kvstore": kv.type,
        "steps": args.steps,
        "bridged_arrays": len(bridged.params),
        "activation": args.activation,
        # Each runs the swish kernel once per forward and its gradient kernel once per backward.
        "operator_layers": sum(isinstance(block, BridgedSwish) for block in net),
        "step_loss_sums": [float(loss.asscalar()) for loss in losses],
        "final_loss": final_loss,
        "counters_before": before,
        "counters_after": after,
        "ms_per_step": timings,
        "ms_per_step_median": {name: statistics.median(values) if values else None
                               for name, values in timings.items()},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker's options (the launcher passes the same ones to every worker)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for worker<rank>.json and .npz")
    parser.add_argument("--kvstore", default="dist_sync")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--activation", choices=ACTIVATIONS, default="swish")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--wd", type=float, default=1e-4)
    parser.add_argument("--timing-rounds", type=int, default=0)
    parser.add_argument("--timing-steps", type=int, default=20)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Train, write this worker's report and parameters; return 0."""
    args = parse_args(argv)
    report = train(args)
    (Path(args.out) / f"worker{report['rank']}.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
