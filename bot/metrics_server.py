"""Serving `/metrics`: a listener of its own on METRICS_PORT, never on the Slack port; off when it is unset.

Rules this module keeps:
- Under gunicorn (`serve`) each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and the master
  process serves their aggregate, so a scrape sees every worker whichever answers. prometheus_client picks where
  values live when it is first imported, so `prepare_multiprocess_dir` runs before anything imports it (and
  switches it over if something already did).
- A directory the operator gives is emptied of old `*.db` files at start: values of a previous run (or of dead
  pids) would otherwise be summed in. Without one a fresh temporary directory is made, and removed at exit.
- A worker that exits has its live gauges dropped (`worker_exited`, gunicorn's child_exit hook).
- Single-process modes (Socket Mode) serve their own registry directly.
- The listener is bot/small_http_server.py: a slow or half-sent client there costs no thread and is dropped at
  its read deadline, so it can neither block scrapes nor, under gunicorn, the master that supervises the workers.
prometheus_client is imported inside the functions: `python -m bot --help` stays light.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from bot.small_http_server import SmallHttpServer

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class MultiprocessDir:
    path: Path
    owned: bool  # made here, so removed at exit; an operator's directory is only emptied

    def remove(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


def prepare_multiprocess_dir(
    environ: MutableMapping[str, str] | None = None, given: str | None = None
) -> MultiprocessDir:
    """Make the directory (`given`, else PROMETHEUS_MULTIPROC_DIR, else a new temporary one) exist and be clean,
    and set it in `environ` (inherited by the workers)."""
    env = os.environ if environ is None else environ
    given = (given or env.get(MULTIPROC_ENV, "")).strip()
    if given:
        env[MULTIPROC_ENV] = given
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        prepared = MultiprocessDir(path, owned=False)
    else:
        prepared = MultiprocessDir(Path(tempfile.mkdtemp(prefix="snapshot-bot-metrics-")), owned=True)
        env[MULTIPROC_ENV] = str(prepared.path)
    if "prometheus_client.values" in sys.modules:  # imported before the directory was known: switch it over
        from prometheus_client import values

        values.ValueClass = values.get_value_class()
    return prepared


def start_multiprocess_server(port: int, host: str, directory: Path) -> SmallHttpServer:
    """Serve the aggregate of every process's files in `directory` on `host`:`port` (a daemon thread)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return start_server(port, host, registry)


def start_server(port: int, host: str, registry: CollectorRegistry) -> SmallHttpServer:
    """Serve one process's `registry` on `host`:`port` (a daemon thread)."""
    from bot.small_http_server import SmallHttpServer, metrics_route

    return SmallHttpServer(host, port, {"/metrics": metrics_route(registry)}).start()


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges from the aggregate (its counters and histograms stay, as they should)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
