"""Measurement helpers: per-call cost of pipelined pushes, samples over interleaved rounds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import mxnet as mx


def per_call_us(call: Callable[[], object], calls: int) -> float:
    """Microseconds per call for ``calls`` calls, including the engine finishing them."""
    mx.nd.waitall()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    mx.nd.waitall()
    return (time.perf_counter() - started) / calls * 1e6


def per_batch_us(run_batch: Callable[[int], object], calls: int) -> float:
    """Microseconds per call when ``run_batch(calls)`` issues the calls itself (e.g. from C)."""
    mx.nd.waitall()
    started = time.perf_counter()
    run_batch(calls)
    mx.nd.waitall()
    return (time.perf_counter() - started) / calls * 1e6


def interleaved_samples(
    measures: dict[str, Callable[[], float]], rounds: int
) -> dict[str, list[float]]:
    """Run every measure once per round, rounds times, interleaved; return every sample.

    Interleaving spreads the machine's noise over all paths alike, so their ratios hold even
    when the absolute figures drift. One round runs first and is discarded, as a warm-up.
    """
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for measure in measures.values():  # warm-up, discarded: worker threads, memory pools
        measure()
    for _ in range(rounds):
        for name, measure in measures.items():
            samples[name].append(measure())
    return samples


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    """Each path's median sample."""
    return {name: statistics.median(values) for name, values in samples.items()}


def spread(values: list[float]) -> dict[str, float]:
    """Min, median, max and the relative spread (max - min) / median of one path's samples."""
    middle = statistics.median(values)
    return {
        "min": min(values),
        "median": middle,
        "max": max(values),
        "relative_spread": (max(values) - min(values)) / middle if middle else 0.0,
    }
