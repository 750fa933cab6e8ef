"""`python -m bench [--quick | --smoke] [--only NAME[,NAME…]]`: run the benchmarks, print the table.

Exit status: 0 when every target is met, 1 when one is missed, 2 when a benchmark could not run. In
`--smoke` mode (the test suite's "does it still run" check, tiny sizes) missed targets do not count.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence

from bench import machine
from bench.procs import stop_all
from bench.scale import FULL, QUICK, SMOKE, Scale
from bench.table import Row, TablePrinter, error_row

log = logging.getLogger("bench")

# name -> module with `run(scale) -> list[Row]`, in the order they run. "footprint" is measured by the ack run.
BENCHMARKS: dict[str, str] = {
    "ack": "bench.ack_load",
    "slow": "bench.slow_connections",
    "answer": "bench.answer_time",
    "audit": "bench.audit_scale",
    "writers": "bench.audit_writers",
    "tracking": "bench.tracking",
    "checkpoints": "bench.audit_checkpoints",
    "approval": "bench.approval_pacing",
    "listing": "bench.listing",
}
ALIASES = {
    "footprint": "ack",
    "memory": "ack",
    "1": "ack",
    "1c": "slow",
    "5": "ack",
    "2": "answer",
    "3": "audit",
    "3c": "writers",
    "4": "tracking",
    "6": "checkpoints",
    "7": "approval",
    "8": "listing",
}


def _selected(only: str | None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = []
    for raw in only.split(","):
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {raw!r}: choose from {', '.join([*BENCHMARKS, *ALIASES])}")
        if name not in names:
            names.append(name)
    return [name for name in BENCHMARKS if name in names]


def _runner(name: str) -> Callable[[Scale], list[Row]]:
    module = importlib.import_module(BENCHMARKS[name])
    return module.run  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="about a minute: smaller loads (marked in the table)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, only checks that everything runs")
    parser.add_argument("--only", metavar="NAME", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress and debug output on stderr")
    args = parser.parse_args(argv)
    scale = SMOKE if args.smoke else QUICK if args.quick else FULL
    # SIGTERM (a CI timeout, `kill`) stops the run the way Ctrl-C does: through the benchmarks' `finally` blocks,
    # which stop the servers they started (in sessions of their own, so no signal reaches them otherwise).
    signal.signal(signal.SIGTERM, _interrupt)

    logging.basicConfig(
        level=logging.INFO if args.verbose or scale is FULL else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # The bot's own loggers in this process (in-process benchmarks) would drown the table.
    for noisy in ("bot", "storage", "alembic", "httpx", "httpcore", "slack_bolt", "slack_sdk"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    names = _selected(args.only)

    out = sys.stdout
    out.write(f"## snapshot-bot benchmarks ({scale.name})\n\n")
    for key, value in machine.facts():
        out.write(f"- {key}: {value}\n")
    out.write("\n")
    out.flush()

    printer = TablePrinter(out)
    printer.header()
    started = time.monotonic()
    try:
        for name in names:
            log.info("running %s", name)
            began = time.monotonic()
            try:
                rows = _runner(name)(scale)
            except Exception as error:  # one broken benchmark must not hide the others' rows
                log.exception("benchmark %s crashed", name)
                rows = [error_row(name, scale.name, error)]
            for row in rows:
                printer.add(row)
            log.info("%s took %.0f s", name, time.monotonic() - began)
    except KeyboardInterrupt:
        stop_all()
        out.write("\ninterrupted: the servers this run started are stopped; no verdict.\n")
        out.flush()
        return 130
    out.write(f"\n{len(printer.rows)} rows in {time.monotonic() - started:.0f} s; ")
    out.write(f"{len(printer.failed)} missed target(s), {len(printer.errors)} error(s).\n")
    out.flush()
    if printer.errors:
        return 2
    if printer.failed and scale is not SMOKE:
        return 1
    return 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
