"""The VPS.org simulator in a process of its own, for the ack benchmark: `python -m bench.vps_process TOKEN`.

The process that times the acknowledgements must not also be the bot's upstream: served from the bench process,
every VPS.org request the bot's background threads make during a load round (the first call of each of 32 jobs
lands in the middle of it) took the bench's interpreter from the 50 client threads timing their acks, so the
bot's rounds were timed under a load the bare app's rounds never had (issue 19 §2). Here the simulator answers
from another process, as VPS.org would.

Protocol: prints `ready <base url>` on stdout once listening; then reads lines on stdin, `latency <seconds>`
or `account <servers> <per server>` (answered `ok`: from then on it serves a fresh account of that many servers
with that many snapshots each, `seed_account`; row 2), until stdin closes, and exits. Until told otherwise it
holds the simulator's sample account.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from types import TracebackType

from bench.procs import stop_piped
from devkit.simulator import VpsSimulator
from devkit.simulator.account import API_PREFIX
from devkit.simulator.server import make_server


class VpsProcess:
    """The simulator child process, seen from the bench: its URL, and its per-call latency knob."""

    def __init__(self, token: str, *, completion_delay: float = 5.0) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.vps_process", token, str(completion_delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.token = token
        self.url = self._answer("ready")

    def _answer(self, expected: str) -> str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        word, _, rest = line.partition(" ")
        if word != expected:
            raise RuntimeError(f"VPS.org simulator process said {line!r} (exit {self._proc.poll()})")
        return rest

    def set_latency(self, seconds: float) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"latency {seconds}\n")
        self._answer("ok")

    def set_account(self, servers: int, per_server: int) -> None:
        """Serve a fresh account of `servers` × `per_server` snapshots from now on."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"account {servers} {per_server}\n")
        self._answer("ok")

    def stop(self) -> None:
        stop_piped(self._proc)

    def __enter__(self) -> VpsProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def seed_account(sim: VpsSimulator, servers: int, per_server: int) -> VpsSimulator:
    """`servers` servers with `per_server` snapshots each (names, sizes, dates and descriptions of nightlies)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for s in range(servers):
        server_id = 10_000 + s
        sim.add_server(server_id, f"server-{s:03d}", status="active" if s % 7 else "stopped")
        for n in range(per_server):
            sim.add_snapshot(
                server_id,
                f"nightly-{s:03d}-{n}",
                created_at=start + timedelta(days=n, minutes=s),
                size_mb=2048 + n,
                description=f"Nightly snapshot {n} of server {s}",
            )
    return sim


def main(argv: list[str]) -> int:
    token, completion_delay = argv[0], float(argv[1])
    sim = VpsSimulator(token, completion_delay=completion_delay)
    server = make_server(sim)
    threading.Thread(target=server.serve_forever, name="vps-simulator", daemon=True).start()
    host, port = server.server_address[:2]
    print(f"ready http://{host}:{port}{API_PREFIX}", flush=True)
    for line in sys.stdin:
        command, _, value = line.strip().partition(" ")
        if command == "latency":
            sim.faults.latency = float(value)
            print("ok", flush=True)
        elif command == "account":
            servers, per_server = (int(n) for n in value.split())
            latency = sim.faults.latency
            sim = seed_account(VpsSimulator(token, completion_delay=completion_delay, seed=False), servers, per_server)
            sim.faults.latency = latency
            server.set_app(sim)
            print("ok", flush=True)
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
