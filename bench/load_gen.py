"""The ack benchmarks' load, fired from a process of its own: `python -m bench.load_gen JOB.json`.

Fired from the bench's own interpreter, the 50 client threads shared it with the fake Slack answering the bot's
post-ack calls, added ~40 ms of their own queueing to both servers' times and pulled the bot ÷ bare ratio towards
1 (issue 27 §6). Here they share nothing with either server's upstream: this process only sends signed commands
and times each until its HTTP answer.

The job (JSON): `url`, `signing_secret`, `team_id`, `api_app_id`, `clients`, `text`, `channel`, and `requests`,
one `{"user": …, "response_url": …}` per command (the response URLs are made by the bench's fake Slack, so it can
tell which commands were answered). The result (JSON on stdout): `latencies` (seconds, one per 200), `statuses`
(count of everything else, by status or exception name), `acked_urls`, `wall` (seconds for the whole load).

`OneAtATime` (row 2, time to answer) keeps such a process open and sends one command per request, answering
when it was sent on CLOCK_MONOTONIC, which every process on the machine shares: the bench, which sees the
answer arrive at its fake Slack, subtracts the two.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devkit.slack_driver import SlackDriver, http_sender


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    sender = http_sender(job["url"], timeout=30.0)
    driver = SlackDriver(sender, job["signing_secret"], team_id=job["team_id"], api_app_id=job["api_app_id"])
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    acked: list[str] = []
    lock = threading.Lock()

    def one(request: dict[str, str]) -> None:
        try:
            response = driver.command(
                job["text"], user_id=request["user"], channel_id=job["channel"], response_url=request["response_url"]
            )
        except Exception as error:  # a timeout or reset is a failed acknowledgement, not a crash of the load
            with lock:
                statuses[type(error).__name__] += 1
            return
        with lock:
            if response.status == 200:
                latencies.append(response.elapsed)
                acked.append(request["response_url"])
            else:
                statuses[str(response.status)] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=job["clients"], thread_name_prefix="client") as pool:
        list(pool.map(one, job["requests"]))
    wall = time.perf_counter() - started
    sender.close()  # type: ignore[attr-defined]
    return {"latencies": latencies, "statuses": dict(statuses), "acked_urls": acked, "wall": wall}


def now() -> float:
    """The clock shared by the bench and this process (one CLOCK_MONOTONIC per machine on Linux)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class OneAtATime:
    """A load process that sends one signed command per `send`, from its own interpreter (row 2)."""

    def __init__(self, job: dict[str, Any], workdir: Path) -> None:
        from bench.procs import child_env

        path = workdir / "one-at-a-time.json"
        path.write_text(json.dumps(job))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.load_gen", "--one-at-a-time", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env({}),
            cwd=workdir,
            text=True,
            bufsize=1,
        )

    def send(self, user: str, response_url: str) -> tuple[float, int]:
        """Send one command; (when it was sent by `now()`, the HTTP status it was answered with)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"user": user, "response_url": response_url}) + "\n")
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the load process ended (exit {self._proc.poll()})")
        answer = json.loads(line)
        return float(answer["sent"]), int(answer["status"])

    def close(self) -> None:
        from bench.procs import stop_piped

        stop_piped(self._proc)


def _one_at_a_time(job: dict[str, Any]) -> None:
    sender = http_sender(job["url"], timeout=30.0)
    driver = SlackDriver(sender, job["signing_secret"], team_id=job["team_id"], api_app_id=job["api_app_id"])
    for line in sys.stdin:
        request = json.loads(line)
        sent = now()
        response = driver.command(
            job["text"], user_id=request["user"], channel_id=job["channel"], response_url=request["response_url"]
        )
        print(json.dumps({"sent": sent, "status": response.status}), flush=True)
    sender.close()  # type: ignore[attr-defined]


def fire_from_process(job: dict[str, Any], workdir: Path, timeout: float = 600.0) -> dict[str, Any]:
    """Run `job` in a fresh `python -m bench.load_gen` and return its result."""
    from bench.procs import child_env

    path = workdir / "load-job.json"
    path.write_text(json.dumps(job))
    done = subprocess.run(
        [sys.executable, "-m", "bench.load_gen", str(path)],
        env=child_env({}),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[0] == "--one-at-a-time":
        _one_at_a_time(json.loads(Path(args[1]).read_text()))
        return 0
    job = json.loads(Path(args[0]).read_text())
    json.dump(run_job(job), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
