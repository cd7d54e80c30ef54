"""Shared by every benchmark: scaling by BENCH_N, peak-memory measurement, and the results format."""

from __future__ import annotations

import os
import resource
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class BenchResult:
    """One line of benchmarks/results.json: ``value`` of ours against ``baseline``; ratio > 1 means we are better."""

    name: str
    value: float
    unit: str
    baseline: float | None
    ratio: float | None
    n: int
    extra: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("name")
        if not data["extra"]:
            data.pop("extra")
        return data


def own_environment() -> list[str]:
    """Benchmarks work only in stores of their own, whatever the environment says: every ``DIGEST_*`` setting
    (a user's DIGEST_DATABASE_URL above all) is dropped for the run, subprocesses included. Only
    DIGEST_TEST_POSTGRES_URL stays: the server on which `send_workers` creates (and drops) a database of its own.
    Returns the names dropped."""
    dropped = sorted(k for k in os.environ if k.startswith("DIGEST_") and k != "DIGEST_TEST_POSTGRES_URL")
    for name in dropped:
        del os.environ[name]
    return dropped


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system): steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def scaled(default_n: int) -> int:
    """BENCH_N caps every benchmark's size, for a quick run (e.g. BENCH_N=1000 make bench)."""
    cap = os.environ.get("BENCH_N")
    return min(default_n, int(cap)) if cap else default_n


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def peak_memory(fn: Callable[[], T]) -> tuple[T, int]:
    """Python-heap peak (bytes) while fn runs, via tracemalloc."""
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
