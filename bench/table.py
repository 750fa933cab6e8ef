"""The shared result table: one `Row` per measurement, printed as a Markdown table row as soon as it exists.

Markdown so the output pastes straight into BENCHMARKS.md; rows are flushed one by one so a long run shows
progress and a crash halfway still leaves the rows measured so far.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

PASS = "pass"
FAIL = "FAIL"
NOT_AVAILABLE = "n/a"
ERROR = "ERROR"

COLUMNS = ("what", "load", "result", "baseline", "ratio", "target", "verdict")


@dataclass(frozen=True)
class Row:
    what: str
    load: str
    result: str
    baseline: str
    ratio: str
    target: str
    verdict: str  # PASS, FAIL, NOT_AVAILABLE or ERROR

    def cells(self) -> tuple[str, ...]:
        return (self.what, self.load, self.result, self.baseline, self.ratio, self.target, self.verdict)


def verdict(ok: bool) -> str:
    return PASS if ok else FAIL


def error_row(what: str, load: str, error: BaseException) -> Row:
    """A benchmark that crashed still gets its row, so the table shows what did not run and why."""
    message = f"{type(error).__name__}: {error}".replace("|", "/").replace("\n", " ")[:160]
    return Row(what, load, message, "-", "-", "-", ERROR)


def ms(seconds: float) -> str:
    """A duration for humans: milliseconds with a precision that fits its size."""
    value = seconds * 1000
    if value < 10:
        return f"{value:.2f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms"


def mb(kilobytes: float) -> str:
    return f"{kilobytes / 1024:.1f} MB"


def ratio(value: float, baseline: float) -> str:
    if baseline <= 0:
        return "-"
    return f"{value / baseline:.2f}×"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): p99 of 300 samples is the 297th smallest, a real sample."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100), at least 1
    return ordered[int(rank) - 1]


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


class TablePrinter:
    """Prints the header once, then each row as it is added; keeps the rows for the exit status."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.rows: list[Row] = []
        self._header_printed = False

    def header(self) -> None:
        if self._header_printed:
            return
        self._header_printed = True
        self.out.write("| " + " | ".join(COLUMNS) + " |\n")
        self.out.write("|" + "|".join("---" for _ in COLUMNS) + "|\n")
        self.out.flush()

    def add(self, row: Row) -> None:
        self.header()
        self.rows.append(row)
        self.out.write("| " + " | ".join(_escape(cell) for cell in row.cells()) + " |\n")
        self.out.flush()

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == FAIL]

    @property
    def errors(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == ERROR]
