"""Distributed dist_sync training with bridged kernels: 2 workers and 1 server on loopback.

Runs the training example's Gluon MLP (``examples/training_step.py``), whose Adam update is one
fused TVM kernel per parameter through the bridge and, by default, whose two hidden layers are
activated by the TVM swish of ``examples/hybrid_operator.py``, a differentiable operator
registered with ``bridge_cffi.register_op`` (``--activation relu``: MXNet's relu instead),
twice on the same global batches:

- once in one process with ``kvstore="device"``: the reference;
- once as a ``dist_sync`` job, a scheduler, one server and ``--workers`` workers started on
  127.0.0.1 by ``examples/ps_launch.py``. Each worker takes its slice of every global batch; the
  Trainer (``update_on_kvstore=False``) sums the gradients through the kvstore and every worker
  runs the bridged update itself (``examples/distributed_worker.py``).

Then checks that the final parameters are identical on every worker, that the loss curve and
final loss match the reference, and, from the bridge's counters on every worker, that it
pushed one update per parameter array and step and ran the swish operator's forward and
backward kernel once per swish layer and step; and prints the job's step time with the
bridged update against the Trainer's own MXNet Adam update, timed in alternating rounds of the
same job.
The job stops by itself when a role dies or after ``--timeout`` seconds, saying which role.

Run: ``.venv/bin/python examples/distributed_training.py [--steps N] [--report FILE.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ps_launch import LoopbackJob

WORKER = Path(__file__).resolve().with_name("distributed_worker.py")

# Children share this 2-core machine: one engine thread and one OpenMP thread each.
CHILD_ENV = {"OMP_NUM_THREADS": "1", "MXNET_CPU_WORKER_NTHREADS": "1"}

#: Loss of the dist_sync job against the single-process run, relative, for the final loss and
#: every step's batch loss. Not bit-identical by construction: the single process sums the
#: batch's gradient in one GEMM and its loss in one reduction, the job sums each worker's half
#: separately and adds the halves on the server, so float32 rounding differs (the swish kernels
#: are elementwise: a row's activation does not depend on how the batch is split). Measured at
#: 200 steps, seeds 0-3, relu model: final losses identical, batch losses at most 2.0e-7 apart
#: (a few ulps), parameters at most 6e-8; swish model (the default): final losses identical for
#: seeds 0-2 and 8.5e-8 apart for seed 3, batch losses at most 2.2e-7, parameters at most
#: 1.2e-7. 1e-5 leaves room for a CPU or LLVM that fuses multiply-adds differently; a wrong
#: gradient or weight (see ``broadcast_initial_params`` in the worker) is off by orders of
#: magnitude more.
LOSS_RTOL = 1e-5

#: What --inject does to which role once worker 1 has trained a few steps (for the tests).
FAULTS = {
    "kill-worker": ("worker 1", signal.SIGKILL),
    "kill-server": ("server 0", signal.SIGKILL),
    "stop-worker": ("worker 1", signal.SIGSTOP),  # hangs without dying: the timeout's case
}


def worker_options(args: argparse.Namespace, out: Path) -> list[str]:
    """The options every worker of the job (and the reference run) is started with."""
    return ["--out", str(out), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
            "--hidden", str(args.hidden), "--seed", str(args.seed), "--activation",
            args.activation]


def run_reference(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The single-process run (kvstore="device") of the same global batches."""
    command = [sys.executable, str(WORKER), *worker_options(args, out), "--kvstore", "device"]
    done = subprocess.run(command, env=dict(os.environ, **CHILD_ENV), capture_output=True,
                          text=True, timeout=args.timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the single-process run failed:\n{done.stdout[-2000:]}")
    report: dict[str, Any] = json.loads((out / "worker0.json").read_text())
    return report


def _wait_for_progress(job: LoopbackJob, role: str, line: str, timeout: float) -> None:
    deadline = job.started + timeout
    while line not in job.logs[role].read_text(errors="replace").splitlines():
        if time.monotonic() > deadline or job.processes[role].poll() is not None:
            return
        time.sleep(0.05)


def run_job(args: argparse.Namespace, out: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The dist_sync job: its outcome and, if it succeeded, each worker's report by rank."""
    command = [sys.executable, str(WORKER), *worker_options(args, out), "--kvstore", "dist_sync",
               "--timing-rounds", str(args.timing_rounds), "--timing-steps",
               str(args.timing_steps)]
    job = LoopbackJob(command, args.workers, 1, out, CHILD_ENV)
    with job:
        job.start()
        print("  launched " + ", ".join(f"{name} (pid {p.pid})"
                                        for name, p in job.processes.items()), flush=True)
        if args.inject:
            role, sig = FAULTS[args.inject]
            _wait_for_progress(job, "worker 1", "step 10", args.timeout)
            print(f"  injecting {sig.name} into {role}", flush=True)
            job.signal(role, sig)
        outcome = job.wait(args.timeout)
    if not outcome.ok:
        return outcome, []
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("worker*.json"))]
    return outcome, sorted(reports, key=lambda report: report["rank"])


def params_max_diff(first: Path, second: Path) -> float:
    """The largest absolute difference between two runs' final parameters (inf if their
    arrays do not correspond).
    """
    a, b = np.load(first), np.load(second)
    if a.files != b.files or any(a[k].shape != b[k].shape for k in a.files):
        return float("inf")
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a.files)


def _counted(report: dict[str, Any], counter: str) -> int:
    counted: int = report["counters_after"][counter] - report["counters_before"][counter]
    return counted


def bridged_updates_by_worker(reports: list[dict[str, Any]]) -> list[int]:
    """Bridged calls each worker pushed to the engine while training (the Adam updates)."""
    return [_counted(r, "ops_pushed") for r in reports]


def operator_runs_by_worker(reports: list[dict[str, Any]]) -> list[int]:
    """Operator kernel runs (swish forward and backward) of each worker while training.

    ``ops_run`` counts every bridged kernel run, pushed calls and operator kernels alike, and
    ``ops_pushed`` pushed calls only; every pushed call has run when the worker reads them
    (after ``waitall``), so the difference is the operator's runs.
    """
    return [_counted(r, "ops_run") - _counted(r, "ops_pushed") for r in reports]


def compare(reference: dict[str, Any], reports: list[dict[str, Any]], batch_size: int,
            job_dir: Path, reference_dir: Path) -> dict[str, Any]:
    """Everything the example checks and prints, from the two runs' reports."""
    # Each worker's loss is summed over its slice: their sum over the workers is the batch's.
    job_curve = np.sum([r["step_loss_sums"] for r in reports], axis=0) / batch_size
    reference_curve = np.asarray(reference["step_loss_sums"]) / batch_size
    final = [r["final_loss"] for r in reports]
    steps = reference["steps"]
    medians = {name: float(np.median([r["ms_per_step_median"][name] for r in reports]))
               for name in ("bridged", "native")}
    return {
        "workers": len(reports),
        # Bit-identical: every worker applies the same kernel to the same pulled gradient.
        "params_agree": all(params_max_diff(job_dir / "worker0.npz", job_dir / f"worker{r}.npz")
                            == 0.0 for r in range(1, len(reports))),
        "params_max_diff_vs_reference": params_max_diff(job_dir / "worker0.npz",
                                                        reference_dir / "worker0.npz"),
        "final_loss_by_worker": final,
        "reference_final_loss": reference["final_loss"],
        "final_loss_rel_diff": abs(final[0] - reference["final_loss"]) / reference["final_loss"],
        "curve_max_rel_diff": float(np.max(np.abs(job_curve - reference_curve)
                                           / np.abs(reference_curve))),
        "first_loss": float(reference_curve[0]),
        "activation": reference["activation"],
        "bridged_updates_by_worker": bridged_updates_by_worker(reports),
        "reference_bridged_updates": bridged_updates_by_worker([reference])[0],
        "expected_bridged_updates": steps * reference["bridged_arrays"],
        "operator_layers": reference["operator_layers"],
        "operator_runs_by_worker": operator_runs_by_worker(reports),
        "reference_operator_runs": operator_runs_by_worker([reference])[0],
        # One forward and one backward kernel per swish layer and step.
        "expected_operator_runs": steps * 2 * reference["operator_layers"],
        "ms_per_step": medians,
        "ms_per_step_by_worker": [r["ms_per_step_median"] for r in reports],
        "ms_per_step_rounds_by_worker": [r["ms_per_step"] for r in reports],
    }


def checks(summary: dict[str, Any]) -> dict[str, bool]:
    """The example's pass/fail checks, by name."""
    updates, runs = summary["expected_bridged_updates"], summary["expected_operator_runs"]
    named = {
        "final parameters identical on every worker": summary["params_agree"],
        f"final loss matches the single process within rtol {LOSS_RTOL:g}":
            summary["final_loss_rel_diff"] <= LOSS_RTOL,
        f"loss curve matches the single process within rtol {LOSS_RTOL:g}":
            summary["curve_max_rel_diff"] <= LOSS_RTOL,
        "bridged update ran on every worker, once per array and step":
            all(ops == updates for ops in summary["bridged_updates_by_worker"]),
    }
    if summary["activation"] == "swish":  # the relu model has no operator to check
        named["bridged operator ran on every worker, forward and backward per layer and step"] = (
            summary["operator_layers"] > 0
            and all(ops == runs for ops in summary["operator_runs_by_worker"]))
    return named


def print_summary(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """The example's report on stdout."""
    ms = summary["ms_per_step"]
    print(f"  final loss: workers {', '.join(f'{v:.8f}' for v in summary['final_loss_by_worker'])}"
          f"; single process (kvstore=device) {summary['reference_final_loss']:.8f} "
          f"(relative difference {summary['final_loss_rel_diff']:.2e}; loss curve at most "
          f"{summary['curve_max_rel_diff']:.2e}; first loss {summary['first_loss']:.6f}; "
          f"parameters differ by at most {summary['params_max_diff_vs_reference']:.2e})")
    print(f"  bridged Adam updates pushed per worker: {summary['bridged_updates_by_worker']} "
          f"(expected {summary['expected_bridged_updates']} = {args.steps} steps x arrays); "
          f"single process: {summary['reference_bridged_updates']}")
    if summary["operator_layers"]:
        print(f"  bridged swish operator kernel runs per worker: "
              f"{summary['operator_runs_by_worker']} (expected "
              f"{summary['expected_operator_runs']} = {args.steps} steps x (forward + backward) "
              f"x {summary['operator_layers']} swish layers); single process: "
              f"{summary['reference_operator_runs']}")
    print(f"  ms/step of the {summary['workers']}-worker job (median of {args.timing_rounds} "
          f"rounds of {args.timing_steps} steps, median over workers): bridged update "
          f"{ms['bridged']:.3f}, MXNet Adam update {ms['native']:.3f} "
          f"(x{ms['bridged'] / ms['native']:.3f})")
    for name, ok in checks(summary).items():
        print(f"  {name}: {ok}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The example's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=_positive, default=200)
    parser.add_argument("--workers", type=_positive, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    # swish by default: the issue asks for a bridged operator inside the distributed model, and
    # with it the job exercises both bridge paths under the kvstore (operator kernels inside
    # MXNet's graph on forward and backward, pushed calls for the update). relu stays for the
    # model of examples/training_step.py and the step times measured with it before.
    parser.add_argument("--activation", choices=("swish", "relu"), default="swish",
                        help="hidden activation: the bridged TVM swish operator, or MXNet's relu")
    parser.add_argument("--timing-rounds", type=_positive, default=5)
    parser.add_argument("--timing-steps", type=_positive, default=20)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds the job may take before it is killed")
    parser.add_argument("--report", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--inject", choices=sorted(FAULTS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run both trainings and compare; 0 when every check passes, 1 when one fails, 2 when
    the job failed (a role died or it timed out).
    """
    args = parse_args(argv)
    activation = "bridged swish" if args.activation == "swish" else "relu"
    print(f"bridge_cffi dist_sync training: 16-{args.hidden}-{args.hidden}-1 MLP ({activation}), "
          f"bridged Adam, "
          f"global batch {args.batch_size}, {args.steps} steps, {args.workers} workers + 1 "
          f"server on {LoopbackJob.__module__}'s loopback launcher", flush=True)
    with tempfile.TemporaryDirectory(prefix="bridge_dist_") as tmp:
        reference_dir, job_dir = Path(tmp, "reference"), Path(tmp, "job")
        reference_dir.mkdir()
        job_dir.mkdir()
        # The job first: a job that fails needs no reference, and the reference's own time
        # (each run gets --timeout) must not eat into a short fault-injection run.
        outcome, reports = run_job(args, job_dir)
        if not outcome.ok:
            print(f"distributed job failed after {outcome.elapsed_s:.1f} s: {outcome.failure}",
                  file=sys.stderr)
            return 2
        reference = run_reference(args, reference_dir)
        summary = compare(reference, reports, args.batch_size, job_dir, reference_dir)
    summary["job_s"] = outcome.elapsed_s
    print_summary(args, summary)
    if args.report:
        args.report.write_text(json.dumps(dict(summary, loss_rtol=LOSS_RTOL,
                                               checks=checks(summary)), indent=1))
    return 0 if all(checks(summary).values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
