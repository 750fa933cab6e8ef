"""How big each benchmark runs: `full` (make bench), `quick` (make bench-quick, about a minute) and `smoke`
(the test suite's check that the benchmarks still run; numbers from it mean nothing)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    # 1 + 5: acknowledgement under load, and worker memory around it
    ack_requests: int  # per round
    ack_rounds: int  # bare and bot take turns, this many rounds each
    ack_clients: int
    ack_vps_latency: float  # seconds the simulator takes per call while the load runs
    workers: int
    threads: int
    # 2: time to answer
    answer_iterations: int
    answer_large: tuple[int, int]  # servers × snapshots per server
    # 3: audit at scale
    audit_rows: int
    audit_queries: int
    audit_baseline_every: int  # time the plain insert on every n-th chunk (the rest is copied in untimed)
    # 4: tracking cost
    tracking_sizes: tuple[int, ...]
    # 1c: half-sent connections held open during the ack load
    slow_connections: int = 500
    # 8: complete listings of large accounts (snapshots in the account; rounds of bot and bare fetch each)
    listing_sizes: tuple[int, ...] = (10_000, 50_000)
    listing_rounds: int = 5
    # 3c: appends per request from several writer processes (seconds per round, rounds per path)
    audit_writer_seconds: float = 3.0
    audit_writer_rounds: int = 3
    audit_writers: tuple[int, ...] = (1, 2, 4)  # writer processes per round; the last is judged against 2×

    @property
    def label(self) -> str:
        return "" if self.name == "full" else f" ({self.name})"


FULL = Scale(
    name="full",
    ack_requests=300,
    ack_rounds=3,
    ack_clients=50,
    ack_vps_latency=5.0,
    workers=2,
    threads=16,
    answer_iterations=30,
    answer_large=(200, 5),
    audit_rows=1_000_000,
    audit_queries=500,
    audit_baseline_every=4,
    tracking_sizes=(1, 100, 500),
)

QUICK = Scale(
    name="quick",
    ack_requests=100,
    ack_rounds=3,
    ack_clients=50,
    ack_vps_latency=1.0,
    workers=2,
    threads=16,
    answer_iterations=10,
    answer_large=(200, 5),
    audit_rows=50_000,
    audit_queries=200,
    audit_baseline_every=1,
    tracking_sizes=(1, 100, 500),
    listing_sizes=(10_000,),
    listing_rounds=5,
    audit_writer_seconds=1.5,
)

SMOKE = Scale(
    name="smoke",
    ack_requests=12,
    ack_rounds=2,
    ack_clients=4,
    ack_vps_latency=0.1,
    workers=1,
    threads=16,
    answer_iterations=2,
    answer_large=(20, 5),
    audit_rows=2_000,
    audit_queries=3,  # per filter combination, 16 of them, twice per database: still every query path
    audit_baseline_every=1,
    tracking_sizes=(1, 10),
    slow_connections=20,
    listing_sizes=(300,),
    listing_rounds=1,
    audit_writer_seconds=0.3,
    audit_writer_rounds=1,
    audit_writers=(1, 2),
)

SCALES = {scale.name: scale for scale in (FULL, QUICK, SMOKE)}


def warm_up_queries(timed: int) -> int:
    """Untimed queries run before `timed` timed ones (pool, statement cache, index pages): 5, fewer at smoke size."""
    return min(5, timed)
