"""`/metrics` of the real server: `python -m bot serve` (gunicorn, two workers) with METRICS_PORT, driven by signed
Slack requests, scraped over HTTP on its own port. Multiprocess mode is what makes the counts add up: the master
serves the scrape, the workers handled the requests, so a count seen at all came through the shared directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devkit.fake_slack import FakeSlack
from devkit.local import local_env
from devkit.simulator import VpsSimulator, start_in_thread
from devkit.slack_driver import SlackDriver, http_sender
from tests.adapter.test_faults_process import eventually, free_port
from tests.app_fixtures import ALICE, OPS, SIGNING_SECRET

T = TypeVar("T")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
# The whole module on one worker, in a row: the shared serve is started once, not once per worker or per gap.
pytestmark = pytest.mark.xdist_group("metrics-serve")


def scrape(url: str) -> tuple[str, Samples]:
    text = httpx.get(url, timeout=5, trust_env=False).text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class Server:
    def __init__(self, tmp: Path, fake: FakeSlack, env: dict[str, str], workers: int) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.log = tmp / "serve.log"
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            **env,
            "PORT": str(self.port),
            "METRICS_PORT": str(self.metrics_port),
            "HOST": "127.0.0.1",
            "SNAPSHOT_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",  # the log test below reads every line of it
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--workers", str(workers), "--threads", "4"],
                cwd=tmp,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        eventually(lambda: self._healthy() or self.proc.poll() is not None, "the bot to start", timeout=60)
        assert self.proc.poll() is None, self.log.read_text(errors="replace")
        self.driver = SlackDriver(
            http_sender(self.url),
            SIGNING_SECRET,
            team_id=fake.team_id,
            api_app_id=fake.api_app_id,
            response_url_factory=fake.new_response_url,
        )

    def _healthy(self) -> bool:
        try:
            ok = httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).status_code == 200
            return ok and httpx.get(self.metrics_url, timeout=1, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def sim() -> Iterator[tuple[VpsSimulator, str]]:
    simulator = VpsSimulator(completion_delay=3600)
    url, stop = start_in_thread(simulator)
    yield simulator, url
    stop()


@pytest.fixture
def server(tmp_path: Path, fake_slack: FakeSlack, sim: tuple[VpsSimulator, str]) -> Iterator[Server]:
    simulator, url = sim
    env = local_env(
        fake_slack, simulator, f"sqlite:///{tmp_path / 'bot.db'}", vps_url=url, signing_secret=SIGNING_SECRET
    )
    running = Server(tmp_path, fake_slack, env, workers=2)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, FakeSlack, VpsSimulator]]:
    """One `serve` for the tests that only read counters they alone move (a serve costs ~2 s of CPU to start)."""
    with FakeSlack() as fake:
        simulator = VpsSimulator(completion_delay=3600)
        url, stop_sim = start_in_thread(simulator)
        tmp = tmp_path_factory.mktemp("metrics")
        env = local_env(fake, simulator, f"sqlite:///{tmp / 'bot.db'}", vps_url=url, signing_secret=SIGNING_SECRET)
        # Every list reaches VPS.org (no read cache): the test counts the calls across both workers.
        env["SNAPSHOT_READ_CACHE_SECONDS"] = "0"
        running = Server(tmp, fake, env, workers=2)
        try:
            yield running, fake, simulator
        finally:
            running.stop()
            stop_sim()


BOUNDED_LABELS = {
    "command": re.compile(r"^(help|list|create|delete|restore|pending|audit|unknown|block_actions|view_submission"
                          r"|view_closed|shortcut|message_action|block_suggestion|other|event:[a-z_]+)$"),
    "endpoint": re.compile(r"^(snapshots/|snapshots/\{id\}/|snapshots/\{id\}/restore/|servers/|account/me/|other)$"),
    "method": re.compile(r"^([A-Z]+|[a-z]+(\.[a-zA-Z]+)+|other)$"),
    "status": re.compile(r"^(\d{3}|error|other)$"),
    "state": re.compile(r"^[a-z_]+$"),
    "outcome": re.compile(r"^[a-z_]+$"),
    "error": re.compile(r"^[a-z0-9_]+$"),
    "le": re.compile(r"^([0-9.]+|\+Inf)$"),
    "version": re.compile(r"^([0-9][0-9A-Za-z.+-]{0,40}|unknown)$"),  # build_info: the installed version
    "python": re.compile(r"^3\.\d+\.\d+\S{0,12}$"),
    "schedule_id": re.compile(r"^\d{1,18}$"),  # database ids of the configured schedules
    "step": re.compile(r"^(sign|refused|file|channel|other)$"),
}  # fmt: skip


def test_a_command_moves_its_ack_counter_and_the_vps_call_counter_across_gunicorn_workers(
    shared: tuple[Server, FakeSlack, VpsSimulator],
) -> None:
    server, fake, simulator = shared  # the other test on it moves only views.publish and Slack error counters
    _, before = scrape(server.metrics_url)
    assert value(before, "snapshot_bot_acks_total", command="list") == 0

    # Several requests, so both workers most likely take some; whichever did, the master's scrape sums them.
    def listings() -> int:
        return len([r for r in simulator.requests if r.method == "GET" and r.path.endswith("/snapshots/")])

    listed_before = listings()
    for _ in range(6):
        answered = len(fake.ephemerals_for(ALICE))
        response = server.driver.command("list 12345", user_id=ALICE, user_name="alice", channel_id=OPS)
        assert response.status == 200, response.body
        # One at a time, each waited for until its answer is shown: two lists in flight in one worker share a single
        # fetch (bot/usecases/listing_cache.py), and its call to VPS.org is not the end of it (servers come next).
        eventually(lambda before=answered: len(fake.ephemerals_for(ALICE)) > before, "the list's answer")
    assert listings() == listed_before + 6, "every list reached VPS.org (no read cache)"
    hostile = server.driver.command("Ünïcode <!channel> 9999", user_id=ALICE, user_name="alice", channel_id=OPS)
    assert hostile.status == 200

    def listed() -> Samples | None:
        _, samples = scrape(server.metrics_url)
        vps = value(samples, "snapshot_bot_vps_requests_total", method="GET", endpoint="snapshots/", status="200")
        audited = value(samples, "snapshot_bot_audit_events_total", outcome="ok")  # each list is audited after it
        return samples if vps >= 6 and audited >= 6 else None

    samples = eventually(listed, "six list calls to VPS.org and their audit rows to be counted")
    text, _ = scrape(server.metrics_url)
    assert value(samples, "snapshot_bot_acks_total", command="list") == 6
    assert value(samples, "snapshot_bot_ack_seconds_count", command="list") == 6
    assert value(samples, "snapshot_bot_acks_total", command="unknown") == 1
    assert value(samples, "snapshot_bot_vps_request_seconds_count", method="GET", endpoint="snapshots/") >= 6
    gets = [r for r in simulator.requests if r.method == "GET" and r.path.endswith("/snapshots/")]
    assert len(gets) >= 6  # what the counter counts really reached VPS.org
    assert value(samples, "snapshot_bot_audit_append_seconds_count") >= 6
    # The ticker keeps the request gauges fresh: every open state is reported, none open yet. Its rounds run on
    # their own clock, so the first one may come after the lists above: waited for, not assumed.
    gauges = eventually(
        lambda: (
            (found := scrape(server.metrics_url)[1])
            and ("snapshot_bot_approval_requests_open", (("state", "pending"),)) in found
            and found
        ),
        "the ticker's first round to set the request gauges",
    )
    assert value(gauges, "snapshot_bot_approval_requests_open", state="pending") == 0
    assert value(gauges, "snapshot_bot_requests_outcome_unknown") == 0

    # No label carries what the user typed, a server id or anything else unbounded.
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for label, label_value in sample.labels.items():
                assert BOUNDED_LABELS[label].match(label_value), (sample.name, label, label_value)
                assert not {"12345", "9999", "channel"} & set(re.split(r"\W", label_value)), label_value

    # /metrics is not on Slack's port.
    assert httpx.get(f"{server.url}/metrics", timeout=5, trust_env=False).status_code == 404


def test_with_log_format_json_every_line_the_server_writes_is_a_json_object(server: Server) -> None:
    response = server.driver.command("list", user_id=ALICE, user_name="alice", channel_id=OPS)
    assert response.status == 200
    server.stop()  # a whole life: start, a request, graceful shutdown
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # raises on the first line that is not JSON
    loggers = {r["logger"] for r in records}
    assert "gunicorn.error" in loggers and "bot.server" in loggers  # gunicorn's own lines too
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("Booting worker" in r["message"] for r in records)


def test_a_failed_slack_call_is_counted_by_method_and_error(shared: tuple[Server, FakeSlack, VpsSimulator]) -> None:
    server, fake_slack, _ = shared
    fake_slack.fail_next("views.publish", error="not_authed")
    assert server.driver.app_home_opened(ALICE).status == 200

    def counted() -> bool:
        _, samples = scrape(server.metrics_url)
        return value(samples, "snapshot_bot_slack_api_errors_total", method="views.publish", error="not_authed") == 1

    eventually(lambda: fake_slack.calls_to("views.publish"), "the bot to publish the Home tab")
    eventually(counted, f"the failed views.publish to be counted; log: {server.log.read_text()[-3000:]}")
