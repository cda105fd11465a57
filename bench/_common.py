"""Helpers shared by the benchmarks: percentiles, verdicts and output.

Kept in one place so that every benchmark computes p50/p99 the same way and prints its
verdicts in the same shape; the numbers of two benchmarks are then comparable.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

NS_PER_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures quoted for one series of timings (milliseconds)."""

    samples: int
    p50_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float


def percentile(values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile: a value that was really observed, never interpolated."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarise(samples_ns: Sequence[int]) -> Summary:
    """p50 (the median, robust to the noise of a shared machine) and p99 (the tail)."""
    return Summary(
        samples=len(samples_ns),
        p50_ms=statistics.median(samples_ns) / NS_PER_MS,
        p99_ms=percentile(samples_ns, 0.99) / NS_PER_MS,
        min_ms=min(samples_ns) / NS_PER_MS,
        max_ms=max(samples_ns) / NS_PER_MS,
    )


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def summary_dict(summary: Summary) -> dict[str, Any]:
    return {key: round(value, 4) for key, value in asdict(summary).items()}


def add_common_arguments(parser: argparse.ArgumentParser, default_samples: int) -> None:
    """The options every benchmark takes, so they are spelled the same everywhere."""
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run: fewer samples, smaller sizes"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help=f"timed samples per series (default {default_samples}, fewer with --quick)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")


def sample_count(requested: int | None, default: int) -> int:
    """``--samples`` if given (even 0, which the caller then refuses), else the default."""
    return default if requested is None else requested


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout stays clean for ``--json``."""
    print(message, file=sys.stderr, flush=True)


def emit(report: list[str], figures: dict[str, Any], as_json: bool) -> None:
    """The human report on stdout, or JSON on stdout and the report on stderr."""
    text = "\n".join(report)
    if as_json:
        print(text, file=sys.stderr)
        print(json.dumps(figures, indent=2))
    else:
        print(text)
