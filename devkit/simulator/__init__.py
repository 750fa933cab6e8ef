"""A stand-in for the VPS.org API: a WSGI app that behaves as the docs (/work/shared/vps-api.md) say.

Used in-process by tests (`VpsSimulator.transport()`), over loopback HTTP by the local shell and benchmarks
(`start_in_thread`, `serve`). It records every request and has fault-injection knobs (`faults`) for the things
a real API does on a bad day: errors, rate limits, dropped connections, HTML error pages, rotated tokens.

One idea per module: `account` (the simulated servers and snapshots, and time-based transitions evaluated
lazily against `clock`, so a fake clock makes them deterministic), `faults` (the knobs), `app` (the API as a
WSGI app) and `server` (serving it over loopback HTTP).
"""

from devkit.simulator.account import API_PREFIX, DEFAULT_TOKEN, FIRST_NEW_SNAPSHOT_ID, RecordedRequest
from devkit.simulator.app import (
    AUTH_MESSAGE,
    CREATE_MESSAGE,
    LIMIT_MESSAGE,
    RESTORABLE_SERVER_STATES,
    RESTORE_MESSAGE,
    VpsSimulator,
)
from devkit.simulator.faults import DroppedConnection, Faults
from devkit.simulator.server import make_server, serve, start_in_thread

__all__ = [
    "API_PREFIX",
    "AUTH_MESSAGE",
    "CREATE_MESSAGE",
    "DEFAULT_TOKEN",
    "FIRST_NEW_SNAPSHOT_ID",
    "LIMIT_MESSAGE",
    "RESTORABLE_SERVER_STATES",
    "RESTORE_MESSAGE",
    "DroppedConnection",
    "Faults",
    "RecordedRequest",
    "VpsSimulator",
    "make_server",
    "serve",
    "start_in_thread",
]
