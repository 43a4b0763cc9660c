"""GPU benchmark (issue 10): per-call costs on gpu(0), measured side by side in one run.

``python -m benchmarks.gpu [--json] [--quick]``. Every path runs the seed's kernel built by
``tvm.build`` for CUDA (examples/seed_example_gpu.py). At n=20 float32, microseconds per call
including the GPU finishing it:

- ``bridge``: ``f(x, y, z, 2.0)`` pushed to MXNet's engine, calls pipelined; each operation
  synchronizes the engine's stream before it completes (finish_on_stream in
  csrc/consumers/mxnet/run.c);
- ``sync_dlpack``: the synchronous exchange: wait for MXNet, ``to_dlpack_for_read/write``,
  ``tvm_ffi.from_dlpack``, call, synchronize the stream;
- ``direct_sync``: the floor: the same kernel called directly through tvm-ffi on tensors made
  once, then ``cuStreamSynchronize`` on the stream it ran on (no engine).

At 2^26 float32: the bridge against direct calls of the same kernel, pipelined on one stream
with one synchronize at the end (``direct``), and with a synchronize after each call
(``direct_sync``). Without a GPU it says why and exits 0.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.timing import interleaved_samples, medians, spread

RESULTS = Path(__file__).resolve().parent / "results"
BIG = 2**26
SCALE = 2.0
#: (label, numerator, denominator, limit): issue 10's targets.
TARGETS = [
    ("n=20: bridge / direct call + sync (floor)", ("n=20", "bridge"), ("n=20", "direct_sync"),
     1.5),
    ("n=20: bridge / synchronous DLPack", ("n=20", "bridge"), ("n=20", "sync_dlpack"), 0.5),
    ("2^26: bridge / direct (one sync)", ("n=2^26", "bridge"), ("n=2^26", "direct"), 1.02),
]


def _cuda() -> ctypes.CDLL:
    """The CUDA driver MXNet loaded (never a second copy)."""
    return ctypes.CDLL("libcuda.so.1", mode=os.RTLD_NOLOAD | os.RTLD_NOW)


def gpu_name() -> str:
    """cuDeviceGetName of device 0."""
    cuda = _cuda()
    device = ctypes.c_int()
    name = ctypes.create_string_buffer(128)
    if cuda.cuDeviceGet(ctypes.byref(device), 0) or cuda.cuDeviceGetName(name, 128, device):
        return "unknown"
    return name.value.decode()


def make_paths(module: Any, n: int) -> dict[str, Callable[[int], float]]:
    """Per path, a function of a call count returning microseconds per call."""
    import mxnet as mx
    import numpy as np
    import tvm_ffi

    import bridge_cffi

    gpu = mx.gpu(0)
    rng = np.random.default_rng(0)
    x_np = rng.uniform(size=n).astype("float32")
    y_np = rng.uniform(size=n).astype("float32")
    x, y = mx.nd.array(x_np, ctx=gpu), mx.nd.array(y_np, ctx=gpu)
    z = mx.nd.empty((n,), ctx=gpu)
    bridged = bridge_cffi.to_mxnet_func(module, const_loc=[0, 1], name="bench_scaled_add_gpu")
    function = module["main"]
    sync = _cuda().cuStreamSynchronize
    sync.argtypes = [ctypes.c_void_p]
    default_stream = None  # tvm-ffi's environment holds no stream here: TVM launches on NULL
    # Tensors for the direct paths: z's storage, taken once (MXNet keeps it alive).
    mx.nd.waitall()
    tx = tvm_ffi.from_dlpack(x.to_dlpack_for_read())
    ty = tvm_ffi.from_dlpack(y.to_dlpack_for_read())
    tz = tvm_ffi.from_dlpack(z.to_dlpack_for_write())

    def bridge(calls: int) -> float:
        mx.nd.waitall()
        started = time.perf_counter()
        for _ in range(calls):
            bridged(x, y, z, SCALE)
        mx.nd.waitall()
        return (time.perf_counter() - started) / calls * 1e6

    def sync_dlpack(calls: int) -> float:
        mx.nd.waitall()
        started = time.perf_counter()
        for _ in range(calls):
            a = tvm_ffi.from_dlpack(x.to_dlpack_for_read())
            b = tvm_ffi.from_dlpack(y.to_dlpack_for_read())
            c = tvm_ffi.from_dlpack(z.to_dlpack_for_write())
            function(a, b, c, SCALE)
            sync(default_stream)
        return (time.perf_counter() - started) / calls * 1e6

    def direct_calls(calls: int, sync_each: bool) -> float:
        sync(default_stream)
        started = time.perf_counter()
        for _ in range(calls):
            function(tx, ty, tz, SCALE)
            if sync_each:
                sync(default_stream)
        sync(default_stream)
        return (time.perf_counter() - started) / calls * 1e6

    def direct(calls: int) -> float:
        return direct_calls(calls, sync_each=False)

    def direct_sync(calls: int) -> float:
        return direct_calls(calls, sync_each=True)

    bridge(2)
    expected = (x_np + y_np) * SCALE
    if not np.allclose(z.asnumpy(), expected, rtol=1e-6):
        raise AssertionError("the bridged GPU kernel gave wrong values")
    return {"bridge": bridge, "sync_dlpack": sync_dlpack, "direct": direct,
            "direct_sync": direct_sync}


SAMPLES: dict[str, dict[str, list[float]]] = {}


def _path_measure(path: Callable[[int], float], count: int) -> Callable[[], float]:
    """One round's measure of ``path``: ``path(count)``."""
    return lambda: path(count)


def measure(
    module: Any, n: int, counts: dict[str, int], rounds: int
) -> dict[str, float]:
    """Medians of interleaved rounds, microseconds per call, for the paths in ``counts``."""
    paths = make_paths(module, n)
    section = "n=2^26" if n == BIG else f"n={n}"
    samples = interleaved_samples(
        {name: _path_measure(paths[name], counts[name]) for name in counts}, rounds
    )
    SAMPLES[section] = samples
    return medians(samples)


def format_section(title: str, row: dict[str, float]) -> list[str]:
    """One section of the table, each path with its microseconds per call."""
    lines = [title]
    for path, value in row.items():
        lines.append(f"    {path:<14}{value:>12.2f} us")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Measure; print the table and the targets; with --json write results/gpu-<stamp>.json."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument("--json", action="store_true", help="also write results/gpu-*.json")
    parser.add_argument("--quick", action="store_true", help="few calls: checks it runs")
    args = parser.parse_args(argv)
    from bridge_cffi.mxnet.selftests import gpu_absent_reason

    absent = gpu_absent_reason()
    if absent is not None:
        print(f"GPU benchmark skipped: no GPU here: {absent}", flush=True)
        return 0
    import mxnet as mx
    import tvm

    from benchmarks.paths import load_example

    rounds = 1 if args.quick else 7
    small = 200 if args.quick else 5000
    big = 5 if args.quick else 100
    module = load_example("seed_example_gpu")["build_scaled_add_cuda"]()
    results: dict[str, dict[str, float]] = {}
    results["n=20"] = measure(
        module, 20,
        {"bridge": small, "sync_dlpack": max(small // 10, 20), "direct_sync": small}, rounds,
    )
    engine = os.environ.get("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice")
    workers = os.environ.get("MXNET_GPU_WORKER_NTHREADS", "2 (default)")
    print(f"{engine}, MXNET_GPU_WORKER_NTHREADS={workers}", flush=True)
    print("\n".join(format_section(f"n=20 float32 on gpu(0) ({gpu_name()}), us per call",
                                   results["n=20"])), flush=True)
    results["n=2^26"] = measure(
        module, BIG, {"bridge": big, "direct": big, "direct_sync": big}, rounds
    )
    print("\n".join(format_section("2^26 float32 on gpu(0), us per call", results["n=2^26"])),
          flush=True)
    ratios = {}
    lines = ["targets (ratios from this run)"]
    for label, (s1, p1), (s2, p2), limit in TARGETS:
        value = results[s1][p1] / results[s2][p2]
        ratios[label] = value
        lines.append(f"    {label:<44}{value:>8.3f}  target <= {limit:<5} "
                     f"{'met' if value <= limit else 'NOT met'}")
    print("\n".join(lines), flush=True)
    if args.json:
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"gpu-{stamp}.json"
        path.write_text(json.dumps({
            "when": stamp, "quick": args.quick, "machine": platform.platform(),
            "gpu": gpu_name(), "cores": os.cpu_count(), "rounds": rounds,
            "engine": engine, "gpu_worker_nthreads": workers,
            "mxnet": mx.__version__, "tvm": tvm.__version__, "figures_us": results,
            "samples": SAMPLES,
            "spread": {s: {p: spread(v) for p, v in paths.items()} for s, paths in SAMPLES.items()},
            "ratios": ratios,
        }, indent=2))
        print(f"written {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
