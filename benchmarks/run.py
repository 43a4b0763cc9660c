"""Runs every measurement in one process and prints ratios against the issue's targets."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import mxnet as mx
import tvm

import bridge_cffi
from benchmarks import operators
from benchmarks.paths import (
    EXAMPLES,
    build_scaled_add,
    load_example,
    make_paths,
    make_view_paths,
)
from benchmarks.timing import interleaved_samples, medians, per_batch_us, per_call_us, spread

logger = logging.getLogger(__name__)
RESULTS = Path(__file__).resolve().parent / "results"
BIG = 2**22
#: Lengths of the staged views in the staging rows (4 and 16 MiB of float32: the second is
#: past glibc's arena heaps, where a fresh buffer per call would be a fresh mmap).
STAGED = 2**20
STAGED_BIG = 2**22


#: Every sample of the run, by section and path (written to the JSON with its spread).
SAMPLES: dict[str, dict[str, list[float]]] = {}


def _measured(section: str, samples: dict[str, list[float]]) -> dict[str, float]:
    SAMPLES[section] = samples
    return medians(samples)


def small_n(module: tvm.runtime.Module, n: int, calls: int, rounds: int) -> dict[str, float]:
    """(a) Per-call cost at length n for every path, in microseconds (medians)."""
    paths = make_paths(module, n)
    sync_calls = max(calls // 20, 50)
    return _measured(
        f"n={n}",
        interleaved_samples(
            {
                "bridge": lambda: per_call_us(paths.bridge, calls),
                "bridge_c_entry": lambda: per_call_us(paths.bridge_c_entry, calls),
                "c_floor": lambda: per_batch_us(paths.floor_batch, calls),
                "elemwise_add": lambda: per_call_us(paths.elemwise_add, calls),
                "native_two_ops": lambda: per_call_us(paths.native_two_ops, calls),
                "sync_dlpack": lambda: per_call_us(paths.sync_dlpack, sync_calls),
                "direct_tvm": lambda: per_call_us(paths.direct_tvm, calls),
                "direct_protocol": lambda: per_call_us(paths.direct_protocol, calls),
            },
            rounds,
        ),
    )


def big_n(module: tvm.runtime.Module, calls: int, rounds: int) -> dict[str, float]:
    """(b) and (c) at 2^22 elements: per-call costs, and the push alone while the engine idles."""
    paths = make_paths(module, BIG)

    def push_only() -> float:
        samples = []
        for _ in range(calls):
            mx.nd.waitall()
            started = time.perf_counter()
            paths.bridge()
            samples.append((time.perf_counter() - started) * 1e6)
        mx.nd.waitall()
        return statistics.median(samples)

    return _measured(
        "n=2^22",
        interleaved_samples(
            {
                "bridge": lambda: per_call_us(paths.bridge, calls),
                "direct_tvm": lambda: per_call_us(paths.direct_tvm, calls),
                "native_two_ops": lambda: per_call_us(paths.native_two_ops, calls),
                "bridge_push_only": push_only,
            },
            rounds,
        ),
    )


def thread_scaling(module: tvm.runtime.Module, calls: int, rounds: int) -> dict[str, float]:
    """(d) Calls per second pushed by one Python thread, and by two at once (own arrays)."""

    def throughput(threads: int) -> float:
        paths = [make_paths(module, 20) for _ in range(threads)]
        barrier = threading.Barrier(threads + 1)

        def pusher(index: int) -> None:
            call = paths[index].bridge
            barrier.wait()
            for _ in range(calls):
                call()

        workers = [threading.Thread(target=pusher, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        mx.nd.waitall()
        barrier.wait()
        started, cpu_started = time.perf_counter(), time.process_time()
        for worker in workers:
            worker.join()
        mx.nd.waitall()
        wall = time.perf_counter() - started
        cores_busy[threads].append((time.process_time() - cpu_started) / wall)
        return threads * calls / wall

    cores_busy: dict[int, list[float]] = {1: [], 2: []}
    result = _measured(
        "threads",
        interleaved_samples(
            {"one_thread": lambda: throughput(1), "two_threads": lambda: throughput(2)}, rounds
        ),
    )
    # CPU seconds per wall second over all threads (pushers and MXNet's engine workers): how
    # much of the machine's cores one pusher already keeps busy bounds what a second can add.
    result["one_thread_cores_busy"] = statistics.median(cores_busy[1])
    result["two_threads_cores_busy"] = statistics.median(cores_busy[2])
    result["cores"] = float(os.cpu_count() or 1)
    return result


def staging(module: tvm.runtime.Module, n: int, calls: int, rounds: int) -> dict[str, float]:
    """(f) A misaligned view into a default-buffer kernel (staged) against an aligned one, and
    one memcpy of that argument's bytes: what staging costs per call.
    """
    paths = make_view_paths(module, n)

    def copy_us() -> float:
        started = time.perf_counter()
        for _ in range(calls):
            paths.memcpy()
        return (time.perf_counter() - started) / calls * 1e6

    return _measured(
        f"views n={n}",
        interleaved_samples(
            {
                "aligned_view": lambda: per_call_us(paths.aligned_view, calls),
                "misaligned_view": lambda: per_call_us(paths.misaligned_view, calls),
                "memcpy": copy_us,
            },
            rounds,
        ),
    )


def training_step(steps: int) -> dict[str, float]:
    """(e) The training example: native Adam against the bridged fused TVM Adam, same seed."""
    example = load_example("training_step")
    native, bridged = example["compare"](steps=steps, update_repeats=max(steps // 2, 10))
    return {
        "native_ms_per_step": native.ms_per_step,
        "bridged_ms_per_step": bridged.ms_per_step,
        "native_ms_per_update": native.ms_per_update,
        "bridged_ms_per_update": bridged.ms_per_update,
        "native_final_loss": native.final_loss,
        "bridged_final_loss": bridged.final_loss,
    }


def registered_operators(
    module: tvm.runtime.Module, calls: int, block_calls: int, rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """(h) bridge_cffi.register_op: per call at n=20, and per forward of a hybridized block."""
    per_call = _measured("operators n=20", operators.per_call(module, 20, calls, rounds))
    blocks = _measured(
        "operators hybridized", operators.hybridized_blocks((1, 256), block_calls, rounds)
    )
    return per_call, blocks


def distributed_step(steps: int, rounds: int, round_steps: int) -> dict[str, float]:
    """(g) The 2-worker dist_sync job of examples/distributed_training.py (1 server, loopback):
    ms per whole step with the bridged update against the Trainer's own MXNet Adam update,
    timed in alternating rounds of ``round_steps`` steps in the same job; medians over rounds,
    then over workers. The job runs in child processes, this one waits.
    """
    with tempfile.TemporaryDirectory(prefix="bench_dist_") as tmp:
        report_path = Path(tmp) / "report.json"
        command = [sys.executable, str(EXAMPLES / "distributed_training.py"), "--steps",
                   str(steps), "--timing-rounds", str(rounds), "--timing-steps",
                   str(round_steps), "--report", str(report_path)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the distributed job failed:\n{done.stdout}{done.stderr}")
        report = json.loads(report_path.read_text())
    SAMPLES["distributed"] = {
        name: [ms for worker in report["ms_per_step_rounds_by_worker"] for ms in worker[name]]
        for name in ("bridged", "native")
    }
    return {
        "workers": float(report["workers"]),
        "rounds": float(rounds),
        "round_steps": float(round_steps),
        "bridged_ms_per_step": report["ms_per_step"]["bridged"],
        "native_ms_per_step": report["ms_per_step"]["native"],
        "final_loss_rel_diff_vs_one_process": report["final_loss_rel_diff"],
    }


TARGETS = [
    # (label, ratio key, limit, "<=" or ">=")
    ("n=20: bridge / native elemwise_add", "n20_bridge_vs_elemwise_add", 0.25, "<="),
    ("n=20: bridge / C floor", "n20_bridge_vs_c_floor", 2.0, "<="),
    ("2^22: bridge / direct TVM", "big_bridge_vs_direct_tvm", 1.05, "<="),
    ("2^22: push / kernel run time", "big_push_vs_kernel", 0.02, "<="),
    ("two threads / one thread throughput", "threads_two_vs_one", 1.5, ">="),
    ("2^20: staging / one memcpy of the view", "staging_extra_vs_memcpy", 1.0, "<="),
    ("2^22: staging / one memcpy of the view", "staging_big_extra_vs_memcpy", 1.0, "<="),
    ("op(x, y) / f(x, y, z) at n=20", "op_ndarray_vs_bridge", 1.5, "<="),
    ("hybridized block, batch 1: bridged / native", "block1_bridged_vs_native", 1.2, "<="),
    ("hybridized block, batch 256: bridged / native", "block256_bridged_vs_native", 1.2, "<="),
]


def _staging_extra(row: dict[str, float]) -> float:
    """What staging adds to a call, in memcpys of the staged view."""
    return (row["misaligned_view"] - row["aligned_view"]) / row["memcpy"]


def ratios(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """The ratios the targets are stated in, from one run's figures."""
    n20, big, threads = results["n=20"], results["n=2^22"], results["threads"]
    return {
        "n20_bridge_vs_elemwise_add": n20["bridge"] / n20["elemwise_add"],
        "n20_bridge_vs_c_floor": n20["bridge"] / n20["c_floor"],
        "n20_c_entry_vs_elemwise_add": n20["bridge_c_entry"] / n20["elemwise_add"],
        "n20_python_share_of_bridge": (n20["bridge"] - n20["bridge_c_entry"]) / n20["bridge"],
        "n1024_bridge_vs_elemwise_add": results["n=1024"]["bridge"]
        / results["n=1024"]["elemwise_add"],
        "n1024_bridge_vs_c_floor": results["n=1024"]["bridge"] / results["n=1024"]["c_floor"],
        "big_bridge_vs_direct_tvm": big["bridge"] / big["direct_tvm"],
        "big_bridge_vs_native_two_ops": big["bridge"] / big["native_two_ops"],
        "big_push_vs_kernel": big["bridge_push_only"] / big["direct_tvm"],
        "threads_two_vs_one": threads["two_threads"] / threads["one_thread"],
        "staging_extra_vs_memcpy": _staging_extra(results[f"views n={STAGED}"]),
        "staging_big_extra_vs_memcpy": _staging_extra(results[f"views n={STAGED_BIG}"]),
        "n20_misaligned_vs_aligned_view": results["views n=20"]["misaligned_view"]
        / results["views n=20"]["aligned_view"],
        "op_ndarray_vs_bridge": results["operators n=20"]["op_ndarray"]
        / results["operators n=20"]["bridge_f_xyz"],
        "op_ndarray_vs_fresh_z": results["operators n=20"]["op_ndarray"]
        / results["operators n=20"]["bridge_f_xy_fresh_z"],
        "op_via_mxnet_vs_bridge": results["operators n=20"]["op_via_mxnet"]
        / results["operators n=20"]["bridge_f_xyz"],
        "python_customop_vs_op_via_mxnet": results["operators n=20"]["python_customop"]
        / results["operators n=20"]["op_via_mxnet"],
        "block1_bridged_vs_native": results["operators hybridized"]["batch1_bridged"]
        / results["operators hybridized"]["batch1_native"],
        "block256_bridged_vs_native": results["operators hybridized"]["batch256_bridged"]
        / results["operators hybridized"]["batch256_native"],
        "dist_bridged_vs_native_ms_per_step": results["distributed"]["bridged_ms_per_step"]
        / results["distributed"]["native_ms_per_step"],
    }


def format_small(size: str, row: dict[str, float]) -> list[str]:
    """(a) rows for one length: figures per path with the ratio to elemwise_add."""
    lines = [f"(a) per call, push + execution, {size} float32 (us; ratio to elemwise_add)"]
    lines.extend(
        f"    {path:<16}{row[path]:>10.2f}   x{row[path] / row['elemwise_add']:.3f}"
        for path in (
            "bridge",
            "bridge_c_entry",
            "c_floor",
            "elemwise_add",
            "native_two_ops",
            "sync_dlpack",
            "direct_tvm",
            "direct_protocol",
        )
    )
    return lines


def format_big(big: dict[str, float]) -> list[str]:
    """(b) and (c): large arrays against the direct call, and the push alone."""
    lines = ["(b) n=2^22 float32, per call (us; ratio to direct TVM)"]
    lines.extend(f"    {path:<16}{big[path]:>10.1f}   x{big[path] / big['direct_tvm']:.3f}"
                 for path in ("bridge", "direct_tvm", "native_two_ops"))
    lines.append(
        f"(c) push of a 2^22 call while the engine idles: {big['bridge_push_only']:.1f} us "
        f"= {big['bridge_push_only'] / big['direct_tvm'] * 100:.2f}% of the kernel's "
        f"{big['direct_tvm']:.0f} us"
    )
    return lines


def format_threads(threads: dict[str, float]) -> list[str]:
    """(d) one pushing thread against two."""
    return [
        (f"(d) bridged calls/s, n=20: one thread {threads['one_thread']:,.0f}, two threads "
        f"{threads['two_threads']:,.0f} (x{threads['two_threads'] / threads['one_thread']:.2f})"),
        (f"    cores busy (all threads, CPU s per wall s): one pusher "
        f"{threads['one_thread_cores_busy']:.2f}, two pushers "
        f"{threads['two_threads_cores_busy']:.2f}, of {threads['cores']:.0f}"),
    ]


def format_staging(results: dict[str, dict[str, float]]) -> list[str]:
    """(f) staging rows: per call, misaligned against aligned, beside one memcpy."""
    lines = ["(f) a view into a default-buffer kernel, per call (us): aligned vs misaligned"]
    for size in ("20", str(STAGED), str(STAGED_BIG)):
        row = results[f"views n={size}"]
        lines.append(
            f"    n={size:<8} aligned {row['aligned_view']:>9.2f}  misaligned (staged) "
            f"{row['misaligned_view']:>9.2f}  one memcpy of the view {row['memcpy']:>8.2f}"
        )
    return lines


def format_training(train: dict[str, float]) -> list[str]:
    """(e) the training example, native against bridged."""
    lines = [
        "(e) training example (MLP 16-64-64-1, Adam, batch 64): native vs bridged fused TVM Adam"
    ]
    for label, key in (("ms/step  ", "ms_per_step"), ("ms/update", "ms_per_update")):
        native, bridged = train[f"native_{key}"], train[f"bridged_{key}"]
        lines.append(
            f"    {label}  native {native:.3f}  bridged {bridged:.3f}  x{bridged / native:.3f}"
        )
    lines.append(
        f"    final loss native {train['native_final_loss']:.8f}  "
        f"bridged {train['bridged_final_loss']:.8f}"
    )
    return lines


def format_operators(per_call: dict[str, float], blocks: dict[str, float]) -> list[str]:
    """(h) registered operators against today's bridged call and what MXNet users write."""
    from bridge_cffi.mxnet.operators import operator_route

    lines = [
        (f"(h) register_op ({operator_route()} route), (x + y) * 2 at n=20 float32, per call "
        "(us; ratio to f(x, y, z))")
    ]
    labels = {
        "bridge_f_xyz": "f(x, y, z, 2.0), z passed in",
        "bridge_f_xy_fresh_z": "f(x, y, mx.nd.empty(n), 2.0)",
        "op_ndarray": "op(x, y, scale=2.0)",
        "op_via_mxnet": "MXNet's own call of the op",
        "python_customop": "Python mx.operator.CustomOp",
        "native_two_ops": "native (x + y) * 2.0",
    }
    for path, label in labels.items():
        value = per_call[path]
        lines.append(f"    {label:<32}{value:>10.2f}   x{value / per_call['bridge_f_xyz']:.3f}")
    lines.append(
        f"    hybridized Dense({operators.UNITS})-sigmoid-Dense per forward (us): bridged sigmoid "
        "vs MXNet's"
    )
    for batch in (1, 256):
        native, bridged = blocks[f"batch{batch}_native"], blocks[f"batch{batch}_bridged"]
        lines.append(
            f"    batch {batch:<4} native {native:>9.1f}  bridged {bridged:>9.1f}  "
            f"x{bridged / native:.3f}"
        )
    return lines


def format_distributed(dist: dict[str, float]) -> list[str]:
    """(g) the dist_sync job, bridged update against MXNet's own."""
    bridged, native = dist["bridged_ms_per_step"], dist["native_ms_per_step"]
    return [
        (f"(g) dist_sync job, {dist['workers']:.0f} workers + 1 server on loopback, ms/step "
        f"(median of {dist['rounds']:.0f} rounds of "
        f"{dist['round_steps']:.0f}, then over workers): bridged update "
        f"{bridged:.3f}  MXNet Adam update {native:.3f}  x{bridged / native:.3f}"),
        (f"    final loss against one process (kvstore=device): relative difference "
        f"{dist['final_loss_rel_diff_vs_one_process']:.2e}"),
    ]


def format_targets(measured: dict[str, float]) -> list[str]:
    """The targets, each with this run's ratio."""
    lines = ["targets (ratios from this run)"]
    for label, key, limit, sense in TARGETS:
        value = measured[key]
        met = value <= limit if sense == "<=" else value >= limit
        lines.append(
            f"    {label:<40}{value:>8.3f}  target {sense} {limit:<5} {'met' if met else 'NOT met'}"
        )
    return lines


def _show(lines: list[str]) -> None:
    # The table is this tool's output: each section as soon as it is measured.
    print("\n".join(lines), flush=True)


def _load() -> list[float]:
    """The 1, 5 and 15 minute load averages (how busy the shared machine was)."""
    return [round(value, 2) for value in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; print the table; with --json also write benchmarks/results/."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--json", action="store_true", help="also write results/<timestamp>.json")
    parser.add_argument(
        "--quick", action="store_true", help="few calls: checks it runs, not figures"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="PNG",
        help="also plot the ratios against their targets "
        "(needs matplotlib: pip install matplotlib)",
    )
    args = parser.parse_args(argv)
    calls, rounds, big_calls = (200, 1, 3) if args.quick else (20000, 7, 30)
    load_before = _load()
    module = build_scaled_add()
    bridge_cffi.to_mxnet_func(module)  # first use binds MXNet and runs the self-tests
    results: dict[str, dict[str, float]] = {}
    for size in (20, 1024):
        results[f"n={size}"] = small_n(module, size, calls, rounds)
        _show(format_small(f"n={size}", results[f"n={size}"]))
    results["n=2^22"] = big_n(module, big_calls, rounds)
    _show(format_big(results["n=2^22"]))
    results["threads"] = thread_scaling(module, calls, rounds)
    _show(format_threads(results["threads"]))
    results["training"] = training_step(20 if args.quick else 300)
    _show(format_training(results["training"]))
    results["distributed"] = distributed_step(*((20, 1, 5) if args.quick else (200, 9, 50)))
    _show(format_distributed(results["distributed"]))
    for size, size_calls in ((20, calls), (STAGED, big_calls * 10), (STAGED_BIG, big_calls * 2)):
        results[f"views n={size}"] = staging(module, size, size_calls, rounds)
    _show(format_staging(results))
    results["operators n=20"], results["operators hybridized"] = registered_operators(
        module, calls // 4, 50 if args.quick else 2000, rounds
    )
    _show(format_operators(results["operators n=20"], results["operators hybridized"]))
    measured = ratios(results)
    _show(format_targets(measured))
    if args.plot:
        from benchmarks.plot import plot_ratios

        _show([f"plot written to {plot_ratios(measured, TARGETS, args.plot)}"])
    if args.json:
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"{stamp}.json"
        path.write_text(
            json.dumps(
                {
                    "when": stamp,
                    "quick": args.quick,
                    "machine": platform.platform(),
                    "cores": os.cpu_count(),
                    "load_average_before": load_before,
                    "load_average_after": _load(),
                    "rounds": rounds,
                    "mxnet": mx.__version__,
                    "tvm": tvm.__version__,
                    "figures_us": results,
                    "samples": SAMPLES,
                    "spread": {
                        section: {path: spread(values) for path, values in paths.items()}
                        for section, paths in SAMPLES.items()
                    },
                    "ratios": measured,
                },
                indent=2,
            )
        )
        _show([f"written {path}"])
    return 0
