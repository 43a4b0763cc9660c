"""Hazard fuzzer: random bridged and native MXNet operations on a pool of arrays and their views,
checked against a sequential numpy reference.

Run in a fresh interpreter per engine configuration (MXNET_ENGINE_TYPE and
MXNET_CPU_WORKER_NTHREADS are read when MXNet starts):

    MXNET_ENGINE_TYPE=ThreadedEngine MXNET_CPU_WORKER_NTHREADS=4 \
        python tests/reliability_fuzz.py --seed 3 --ops 50000 [--c-kernel libscale_kernels.so]

It prints one JSON object (counts, mismatches) as its last line and exits non-zero on an error.

How the reference stays exact: every array holds small integers in float32 (|v| <= LIMIT, with
a native modulo pushed whenever an operation's reference result exceeds it), so every kernel's
float32 arithmetic is exact and the comparison is bit-for-bit equality.

Aliasing: arguments are views (slices, rows, reshapes, reshaped slices, mx.np wrappers) of the
pool arrays, often of one array, so many calls pass one engine variable several times. Two
arguments whose bytes overlap, where one is written, must cover exactly the same elements:
every kernel is element-wise (out[i] depends on the inputs at i only), so that case has one
meaning whatever the loop order. Shifted overlaps are excluded, because TVM marks buffers
noalias and the result would depend on vectorisation; so is any overlap of the two-output
kernel's outputs. Disjoint views of one array, identical views, and reading one array many
times are all generated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mxnet as mx
import numpy as np

import bridge_cffi
from bridge_cffi.mxnet.interface import MxnetFunc
from kernels_tvm import add_into, add_scalar, scale_2d, scaled_add
from reliability_kernels import axpy, sum_diff

LIMIT = 1024.0
MODULUS = 61
STALL_ELEMENTS = 300_000
POOL_SHAPES = [(4, 8), (4, 8), (2, 16), (32,), (8, 4), (48,)]
F32 = np.float32


@dataclass(frozen=True)
class View:
    """``shape`` elements of pool array ``base``, starting at flat element ``start``."""

    base: int
    start: int
    shape: tuple[int, ...]
    route: str

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def stop(self) -> int:
        return self.start + self.size


class Pool:
    """The MXNet arrays and their numpy mirrors."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.mx: list[mx.nd.NDArray] = []
        self.np: list[np.typing.NDArray[np.float32]] = []
        for shape in POOL_SHAPES:
            values = self.random_values(shape)
            self.np.append(values)
            self.mx.append(mx.nd.array(values, dtype="float32"))

    def random_values(self, shape: tuple[int, ...]) -> np.typing.NDArray[np.float32]:
        size = int(np.prod(shape))
        return np.array([self.rng.randint(-20, 20) for _ in range(size)], dtype=F32).reshape(shape)

    def np_view(self, view: View) -> np.typing.NDArray[np.float32]:
        return self.np[view.base].reshape(-1)[view.start:view.stop].reshape(view.shape)

    def mx_view(self, view: View, as_np: bool = False) -> mx.nd.NDArray:
        base = self.mx[view.base]
        size = base.size
        route = view.route
        if route == "full":
            out = base
        elif route == "flat":
            out = base.reshape((size,))
        elif route == "flat_slice":
            out = base.reshape((size,))[view.start:view.stop]
        elif route == "row":
            out = base[view.start // base.shape[1]]
        elif route == "rows":
            cols = base.shape[1]
            out = base[view.start // cols:view.stop // cols]
        elif route == "rows_flat":
            cols = base.shape[1]
            out = base[view.start // cols:view.stop // cols].reshape((-1,))
        elif route == "slice_2d":
            out = base.reshape((size,))[view.start:view.stop].reshape(view.shape)
        else:
            raise AssertionError(route)
        assert out.shape == view.shape, (route, out.shape, view.shape)
        return out.as_np_ndarray() if as_np else out


class Fuzzer:
    def __init__(self, seed: int, c_kernel: str | None) -> None:
        self.rng = random.Random(seed)
        self.pool = Pool(self.rng)
        self.slow = mx.nd.zeros((STALL_ELEMENTS,))
        self.stats = {"bridged": 0, "native": 0, "reductions": 0, "stalls": 0, "replaced": 0,
                      "waits": 0, "aliased_calls": 0, "identical_alias": 0, "view_args": 0,
                      "mx_np_args": 0, "checkpoints": 0}
        self.per_kernel: dict[str, int] = {}
        self.log: list[str] = []
        self.kernels = [
            ("add_into", bridge_cffi.to_mxnet_func(add_into(), const_loc=[0, 1]), self.k_add_into),
            ("scaled_add", bridge_cffi.to_mxnet_func(scaled_add(), const_loc=[0, 1]),
             self.k_scaled_add),
            ("add_scalar", bridge_cffi.to_mxnet_func(add_scalar("float32"), const_loc=[0]),
             self.k_add_scalar),
            ("scale_2d", bridge_cffi.to_mxnet_func(scale_2d(), const_loc=[0]), self.k_scale_2d),
            ("sum_diff", bridge_cffi.to_mxnet_func(sum_diff(), const_loc=[0, 1]), self.k_sum_diff),
            ("axpy", bridge_cffi.to_mxnet_func(axpy(), const_loc=[1]), self.k_axpy),
        ]
        if c_kernel:
            scale = bridge_cffi.to_mxnet_func(bridge_cffi.load_c_kernel(c_kernel), const_loc=[0])
            self.kernels.append(("c_scale", scale, self.k_c_scale))

    # ---- choosing views ----

    def pick_base(self, min_size: int, prefer: int | None) -> int:
        if (prefer is not None and self.rng.random() < 0.65
                and self.pool.np[prefer].size >= min_size):
            return prefer
        candidates = [i for i, a in enumerate(self.pool.np) if a.size >= min_size]
        return self.rng.choice(candidates)

    def vec_view(self, n: int, prefer: int | None, aligned: bool = False) -> View:
        """A 1-D view of n elements; ``aligned``: its first byte is 64-byte aligned."""
        base = self.pick_base(n, prefer)
        shape = self.pool.np[base].shape
        size = self.pool.np[base].size
        options: list[View] = []
        if aligned:
            starts = list(range(0, size - n + 1, 16))
            s = self.rng.choice(starts)
            options.append(View(base, s, (n,), "flat_slice"))
            if n == size:
                options.append(View(base, 0, (n,), "flat"))
                if len(shape) == 1:
                    options.append(View(base, 0, (n,), "full"))
            return self.rng.choice(options)
        s = self.rng.randint(0, size - n)
        options.append(View(base, s, (n,), "flat_slice"))
        if n == size:
            options.append(View(base, 0, (n,), "flat"))
            if len(shape) == 1:
                options.append(View(base, 0, (n,), "full"))
        if len(shape) == 2:
            rows, cols = shape
            if cols == n:
                r = self.rng.randrange(rows)
                options.append(View(base, r * cols, (n,), "row"))
            if n % cols == 0:
                r = self.rng.randint(0, rows - n // cols)
                options.append(View(base, r * cols, (n,), "rows_flat"))
        return self.rng.choice(options)

    def mat_view(self, m: int, n: int, prefer: int | None) -> View:
        base = self.pick_base(m * n, prefer)
        shape = self.pool.np[base].shape
        size = self.pool.np[base].size
        options = [View(base, self.rng.randint(0, size - m * n), (m, n), "slice_2d")]
        if len(shape) == 2 and shape[1] == n:
            r = self.rng.randint(0, shape[0] - m)
            options.append(View(base, r * n, (m, n), "rows"))
            if shape[0] == m:
                options.append(View(base, 0, (m, n), "full"))
        return self.rng.choice(options)

    def same_shape_view(self, like: View, prefer: int | None) -> View:
        if len(like.shape) == 1:
            return self.vec_view(like.shape[0], prefer)
        return self.mat_view(like.shape[0], like.shape[1], prefer)

    def args_views(self, count: int, make: Callable[[int], View]) -> list[View]:
        """``count`` views from ``make(prefer)``, biased towards one pool array."""
        prefer = self.rng.randrange(len(self.pool.np))
        return [make(prefer) for _ in range(count)]

    @staticmethod
    def legal(views: list[View], written: list[bool], exclusive_writes: bool) -> bool:
        """Overlapping bytes with a writer must be the very same elements (see module doc)."""
        for i in range(len(views)):
            for j in range(i + 1, len(views)):
                a, b = views[i], views[j]
                if a.base != b.base or not (written[i] or written[j]):
                    continue
                if a.start >= b.stop or b.start >= a.stop:
                    continue
                if exclusive_writes:
                    return False
                if (a.start, a.size) != (b.start, b.size):
                    return False
        return True

    def maybe_reuse(self, views: list[View], inputs: list[int], outputs: list[int]) -> None:
        """Now and then make an output the very same view as an input (in place)."""
        if self.rng.random() < 0.3:
            o = self.rng.choice(outputs)
            i = self.rng.choice(inputs)
            views[o] = views[i]

    def call(self, name: str, func: MxnetFunc, views: list[View],
             scalars: list[float], layout: list[int | str]) -> None:
        """Push ``func`` with views (layout: int = view index, 's' = next scalar)."""
        args: list[object] = []
        scalar_iter = iter(scalars)
        for item in layout:
            if isinstance(item, str):  # "s"
                args.append(next(scalar_iter))
            else:
                view = views[item]
                as_np = self.rng.random() < 0.1
                args.append(self.pool.mx_view(view, as_np))
                self.stats["view_args"] += view.route != "full"
                self.stats["mx_np_args"] += as_np
        bases = [v.base for v in views]
        if len(set(bases)) < len(bases):
            self.stats["aliased_calls"] += 1
        if len({(v.base, v.start, v.size) for v in views}) < len(views):
            self.stats["identical_alias"] += 1
        func(*args)
        self.stats["bridged"] += 1
        self.per_kernel[name] = self.per_kernel.get(name, 0) + 1
        self.log.append(f"{name} {views} {scalars}")

    # ---- bridged kernels: each pushes the call and applies the same semantics in numpy ----

    def k_add_into(self, func: MxnetFunc) -> bool:
        n = self.rng.randint(1, 32)
        views = self.args_views(3, lambda p: self.vec_view(n, p))
        self.maybe_reuse(views, [0, 1], [2])
        written = [False, False, True]
        if not self.legal(views, written, False):
            return False
        a, b, out = (self.pool.np_view(v) for v in views)
        result = a + b
        self.call("add_into", func, views, [], [0, 1, 2])
        out[...] = result
        return True

    def k_scaled_add(self, func: MxnetFunc) -> bool:
        # TVM's default buffers: 1-D, and the view must start 64-byte aligned.
        n = self.rng.randint(1, 32)
        views = self.args_views(3, lambda p: self.vec_view(n, p, aligned=True))
        self.maybe_reuse(views, [0, 1], [2])
        written = [False, False, True]
        if not self.legal(views, written, False):
            return False
        s = float(self.rng.randint(-2, 2))
        x, y, z = (self.pool.np_view(v) for v in views)
        result = (x + y) * F32(s)
        self.call("scaled_add", func, views, [s], [0, 1, 2, "s"])
        z[...] = result
        return True

    def k_add_scalar(self, func: MxnetFunc) -> bool:
        n = self.rng.randint(1, 48)
        views = self.args_views(2, lambda p: self.vec_view(n, p))
        self.maybe_reuse(views, [0], [1])
        written = [False, True]
        if not self.legal(views, written, False):
            return False
        k = self.rng.randint(-3, 3)
        a, out = (self.pool.np_view(v) for v in views)
        result = a + F32(k)
        self.call("add_scalar", func, views, [k], [0, 1, "s"])
        out[...] = result
        return True

    def k_scale_2d(self, func: MxnetFunc) -> bool:
        m, n = self.rng.randint(1, 3), self.rng.choice([1, 2, 4, 8, 16])
        views = self.args_views(2, lambda p: self.mat_view(m, n, p))
        self.maybe_reuse(views, [0], [1])
        written = [False, True]
        if not self.legal(views, written, False):
            return False
        s = float(self.rng.randint(-2, 2))
        a, out = (self.pool.np_view(v) for v in views)
        result = a * F32(s)
        self.call("scale_2d", func, views, [s], [0, 1, "s"])
        out[...] = result
        return True

    def k_sum_diff(self, func: MxnetFunc) -> bool:
        n = self.rng.randint(1, 16)
        views = self.args_views(4, lambda p: self.vec_view(n, p))
        written = [False, False, True, True]
        if not self.legal(views, written, True):
            return False
        a, b, o1, o2 = (self.pool.np_view(v) for v in views)
        r1, r2 = a + b, a - b
        self.call("sum_diff", func, views, [], [0, 1, 2, 3])
        o1[...] = r1
        o2[...] = r2
        return True

    def k_axpy(self, func: MxnetFunc) -> bool:
        n = self.rng.randint(1, 32)
        views = self.args_views(2, lambda p: self.vec_view(n, p))
        if self.rng.random() < 0.2:
            views[1] = views[0]
        written = [True, False]
        if not self.legal(views, written, False):
            return False
        alpha = float(self.rng.randint(-2, 2))
        y, x = (self.pool.np_view(v) for v in views)
        result = y + F32(alpha) * x
        self.call("axpy", func, views, [alpha], [0, 1, "s"])
        y[...] = result
        return True

    def k_c_scale(self, func: MxnetFunc) -> bool:
        if self.rng.random() < 0.5:
            n = self.rng.randint(1, 32)
            make = lambda p: self.vec_view(n, p)  # noqa: E731
        else:
            m, n = self.rng.randint(1, 4), self.rng.choice([2, 4, 8])
            make = lambda p: self.mat_view(m, n, p)  # noqa: E731
        views = self.args_views(2, make)
        self.maybe_reuse(views, [0], [1])
        written = [False, True]
        if not self.legal(views, written, False):
            return False
        scale = float(self.rng.randint(-2, 2))
        a, out = (self.pool.np_view(v) for v in views)
        result = (a.astype(np.float64) * scale).astype(F32)
        self.call("c_scale", func, views, [scale], [0, 1, "s"])
        out[...] = result
        return True

    # ---- native MXNet operations on the same arrays ----

    def native(self) -> bool:
        rng, pool = self.rng, self.pool
        kind = rng.choice(["add", "add", "clip", "imul", "fill", "copy", "negative", "replace",
                           "wait", "stall", "stall"])
        if kind == "stall":
            # Make a pool array depend on a slow chain of native work, so operations pushed
            # after it queue up behind it: without a backlog a missing dependency goes unseen.
            i = rng.randrange(len(pool.np))
            for _ in range(3):
                self.slow = mx.nd.sqrt(self.slow * self.slow)  # stays all zeros
            size = pool.np[i].size
            zeros = self.slow[0:size].reshape(pool.np[i].shape)
            mx.nd.elemwise_add(pool.mx[i], zeros, out=pool.mx[i])
            self.stats["stalls"] += 1
            self.log.append(f"stall {i}")
            return True
        if kind == "replace":
            # Drop a pool array that may still have operations pending, use a fresh one.
            i = rng.randrange(len(pool.np))
            values = pool.random_values(pool.np[i].shape)
            pool.np[i] = values
            pool.mx[i] = mx.nd.array(values, dtype="float32")
            self.stats["replaced"] += 1
            self.log.append(f"replace {i}")
            return True
        if kind == "wait":
            pool.mx[rng.randrange(len(pool.np))].wait_to_read()
            self.stats["waits"] += 1
            return True
        if kind == "fill":
            i = rng.randrange(len(pool.np))
            shape = pool.np[i].shape
            r0 = rng.randrange(shape[0])
            r1 = rng.randint(r0 + 1, shape[0])
            k = rng.randint(-5, 5)
            pool.mx[i][r0:r1] = k
            pool.np[i][r0:r1] = k
            self.stats["native"] += 1
            self.log.append(f"fill {i}[{r0}:{r1}] = {k}")
            return True
        n = rng.randint(1, 32)
        if kind == "add":
            views = self.args_views(3, lambda p: self.vec_view(n, p))
            self.maybe_reuse(views, [0, 1], [2])
            written = [False, False, True]
        else:
            views = self.args_views(2, lambda p: self.vec_view(n, p))
            if kind != "copy":
                self.maybe_reuse(views, [0], [1])
            written = [False, True]
        if kind == "imul":
            views = views[:1]
            written = [True]
        if not self.legal(views, written, False):
            return False
        src = [pool.mx_view(v) for v in views]
        dst = [pool.np_view(v) for v in views]
        if kind == "add":
            result = dst[0] + dst[1]
            mx.nd.elemwise_add(src[0], src[1], out=src[2])
            dst[2][...] = result
        elif kind == "clip":
            result = np.clip(dst[0], -LIMIT / 2, LIMIT / 2)
            mx.nd.clip(src[0], -LIMIT / 2, LIMIT / 2, out=src[1])
            dst[1][...] = result
        elif kind == "imul":
            k = rng.choice([-1, 2])
            target = src[0]
            target *= k
            dst[0][...] = dst[0] * F32(k)
        elif kind == "copy":
            if views[0].base == views[1].base and not (views[0].stop <= views[1].start
                                                       or views[1].stop <= views[0].start):
                return False  # copyto between overlapping views of one array
            src[0].copyto(src[1])
            dst[1][...] = dst[0].copy()
        elif kind == "negative":
            result = -dst[0]
            mx.nd.negative(src[0], out=src[1])
            dst[1][...] = result
        self.stats["native"] += 1
        self.log.append(f"native {kind} {views}")
        return True

    def bound_magnitudes(self) -> None:
        """Keep every value small enough for exact float32 arithmetic: a native ``x % 61``
        (floor modulo, exact on small integers) in place on an array that grew past LIMIT.
        """
        for i, values in enumerate(self.pool.np):
            if np.abs(values).max() > LIMIT:
                target = self.pool.mx[i]
                mx.nd._internal._mod_scalar(target, scalar=float(MODULUS), out=target)
                np.mod(values, F32(MODULUS), out=values)
                self.stats["reductions"] += 1

    def compare(self) -> tuple[int, list[str]]:
        """Wait for everything; count elements that differ from the reference."""
        self.stats["checkpoints"] += 1
        mismatches, details = 0, []
        for i, (got, want) in enumerate(zip(self.pool.mx, self.pool.np, strict=True)):
            got_np = got.asnumpy()
            bad = got_np != want
            count = int(bad.sum())
            if count:
                mismatches += count
                where = np.argwhere(bad)[:3].tolist()
                details.append(f"array {i}: {count} elements differ, e.g. at {where}: "
                               f"got {got_np[bad][:3].tolist()} want {want[bad][:3].tolist()}")
        return mismatches, details

    def run(self, ops: int, checkpoints: int) -> dict[str, object]:
        done = 0
        mismatches, details = 0, list[str]()
        every = max(1, ops // max(1, checkpoints))
        while done < ops:
            if self.rng.random() < 0.7:
                _, func, apply = self.rng.choice(self.kernels)
                ok = apply(func)
            else:
                ok = self.native()
            if not ok:
                continue
            done += 1
            self.bound_magnitudes()
            if done % every == 0 or done == ops:
                bad, why = self.compare()
                if bad and not details:
                    details = [*why, "last operations: " + " | ".join(self.log[-8:])]
                mismatches += bad
            if len(self.log) > 64:
                del self.log[:32]
        return {"ops": done, "mismatches": mismatches, "details": details}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--checkpoints", type=int, default=4,
                        help="compare with the reference this many times (the last at the end)")
    parser.add_argument("--c-kernel", default=None, help="path of the compiled scale_kernels.c")
    options = parser.parse_args(argv)
    started = time.monotonic()
    before = bridge_cffi.read_counters()
    fuzzer = Fuzzer(options.seed, options.c_kernel)
    outcome = fuzzer.run(options.ops, options.checkpoints)
    mx.nd.waitall()
    released = bridge_cffi.wait_until_released()
    after = bridge_cffi.read_counters()
    delta = {k: after[k] - before[k] for k in after}
    report = {
        "engine": os.environ.get("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice"),
        "cpu_worker_nthreads": os.environ.get("MXNET_CPU_WORKER_NTHREADS", "default"),
        "seed": options.seed,
        **outcome,
        **fuzzer.stats,
        "per_kernel": fuzzer.per_kernel,
        "pushed": delta["ops_pushed"],
        "all_released": released,
        "dlpack_balanced": delta["dlpack_taken"] == delta["dlpack_deleted"],
        "ops_balanced": delta["ops_pushed"] == delta["ops_run"] == delta["ops_freed"],
        "seconds": round(time.monotonic() - started, 2),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
