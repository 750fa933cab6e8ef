"""A paged VPS.org snapshot listing in a process of its own, for the listing benchmark:
`python -m bench.listing_api SNAPSHOTS PAGE_SIZE LATENCY_SECONDS`.

It answers `GET /api/v1/snapshots/` (and `?page=N`) as VPS.org does — `count`, `results`, an absolute `next` — from
pages built once at start-up, each after `LATENCY_SECONDS`, so the time a page takes is the API's own and the same
for the bot's client and for the bare fetch it is compared with. The account is shaped like a real one: 5 snapshots
per server, names and descriptions of realistic length, a mix of sizes and dates.

Prints `ready <base url>` on stdout once listening and exits when stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PER_SERVER = 5
KINDS = ("pre-upgrade", "nightly", "weekly", "pre-migration", "before-deploy")


def snapshot(n: int) -> dict[str, Any]:
    server = 100_000 + n // PER_SERVER
    created = datetime(2026, 11, 30, 2, 0, tzinfo=UTC) - timedelta(hours=7 * n % 2_000, minutes=n % 60)
    kind = KINDS[n % len(KINDS)]
    return {
        "id": 1_000_000 + n,
        "server": {"id": server, "name": f"web-{server}.eu-west.example.com"},
        "name": f"{kind}-{created:%Y-%m-%d}-{n % 97}",
        "status": "completed" if n % 50 else "in_progress",
        "size_mb": None if n % 50 == 0 else 2_048 + (n * 7919) % 40_000,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "description": f"{kind.replace('-', ' ').capitalize()} snapshot taken by the ops team (ticket OPS-{n % 9973})",
    }


def build_pages(total: int, page_size: int, base: str) -> dict[int, bytes]:
    pages: dict[int, bytes] = {}
    count = -(-total // page_size) or 1
    for number in range(1, count + 1):
        start = (number - 1) * page_size
        body = {
            "count": total,
            "next": f"{base}snapshots/?page={number + 1}" if number < count else None,
            "previous": None if number == 1 else f"{base}snapshots/?page={number - 1}",
            "results": [snapshot(n) for n in range(start, min(total, start + page_size))],
        }
        pages[number] = json.dumps(body).encode()
    return pages


def main(argv: list[str]) -> int:
    total, page_size, latency = int(argv[0]), int(argv[1]), float(argv[2])
    pages: dict[int, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real API behind a load balancer
        disable_nagle_algorithm = True  # headers and body go out at once (no delayed-ACK stall per page)

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            body = pages.get(int(query.get("page", ["1"])[0]))
            time.sleep(latency)
            status = 200 if body is not None else 404
            body = body if body is not None else b'{"detail": "Invalid page."}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    base = f"http://{host}:{port}/api/v1/"
    pages.update(build_pages(total, page_size, base))
    threading.Thread(target=server.serve_forever, name="listing-api", daemon=True).start()
    print(f"ready {base}", flush=True)
    for _ in sys.stdin:
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
