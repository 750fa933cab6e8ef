"""`/livez` and `/readyz` of the real server (`python -m bot serve`, gunicorn) and of Socket Mode's HEALTH_PORT.

The database and Slack are taken away from a running bot through TCP proxies the test controls (never by
stopping the shared PostgreSQL other tests use): liveness stays 200 throughout, readiness is 503 while either is
gone and 200 again once it is back. Slack unreachable at start no longer kills the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devkit.fake_slack import FakeSlack
from devkit.fake_socket_mode import FakeSocketMode
from devkit.local import local_env
from devkit.simulator import VpsSimulator, start_in_thread
from tests.adapter.tcp_proxy import CuttableProxy
from tests.adapter.test_faults_process import eventually, free_port

pytestmark = pytest.mark.postgres


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=3, trust_env=False)
    except httpx.HTTPError:
        return None


def status(url: str) -> int | None:
    response = get(url)
    return response.status_code if response is not None else None


@pytest.fixture
def vps_url() -> Iterator[str]:
    url, stop = start_in_thread(VpsSimulator(completion_delay=3600))
    try:
        yield url
    finally:
        stop()


@pytest.fixture
def proxies(postgres_schema_url: str, fake_slack: FakeSlack) -> Iterator[tuple[CuttableProxy, CuttableProxy]]:
    database = CuttableProxy.for_url(postgres_schema_url.replace("postgresql+psycopg", "postgresql"), 5432)
    slack = CuttableProxy.for_url(fake_slack.api_url, 80)
    try:
        yield database, slack
    finally:
        database.close()
        slack.close()


def via(url: str, proxy: CuttableProxy) -> str:
    """`url` with its host and port replaced by the proxy's."""
    scheme, rest = url.split("://", 1)
    userinfo, _, hostpath = rest.rpartition("@")
    _, _, path = hostpath.partition("/")
    return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{proxy.port}/{path}"


def start(args: list[str], env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    log = tmp / "bot.log"
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            cwd=tmp,
            env={"PATH": os.environ.get("PATH", ""), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_serve_starts_without_slack_and_readiness_follows_slack_and_the_database(
    tmp_path: Path,
    fake_slack: FakeSlack,
    vps_url: str,
    postgres_schema_url: str,
    proxies: tuple[CuttableProxy, CuttableProxy],
) -> None:
    database, slack = proxies
    slack.cut()  # Slack unreachable at start: gunicorn's worker used to fail to boot
    port = free_port()
    env = local_env(
        fake_slack,
        VpsSimulator(),
        via(postgres_schema_url, database),
        vps_url=vps_url,
        SLACK_API_URL=via(fake_slack.api_url, slack),
        PORT=str(port),
        HOST="127.0.0.1",
    )
    proc = start(["serve", "--workers", "1", "--threads", "4"], env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: status(base + "/livez") == 200 or proc.poll() is not None, "the bot to serve", 60)
        assert proc.poll() is None, (tmp_path / "bot.log").read_text(errors="replace")
        assert status(base + "/readyz") == 503
        # The first auth.test may still be under way; then it fails, and says why (without a URL).
        eventually(lambda: (r := get(base + "/readyz")) is not None and "slack unreachable" in r.text, "the reason")
        assert status(base + "/healthz") == 503  # the alias says the same

        slack.restore()  # auth.test is retried with backoff: ready once it passes
        eventually(lambda: status(base + "/readyz") == 200, "ready after Slack came back", 60)
        assert fake_slack.calls_to("auth.test")

        database.cut()
        dead = eventually(lambda: (r := get(base + "/readyz")) is not None and r.status_code == 503 and r, "503")
        assert dead.text == "not ready: database unavailable\n"  # fixed words: no URL, no password
        assert status(base + "/livez") == 200  # liveness never asks the database: no restart storm
        assert status(base + "/healthz") == 503

        database.restore()
        eventually(lambda: status(base + "/readyz") == 200, "ready after the database came back", 60)
        assert proc.poll() is None
    finally:
        stop(proc)


def test_socket_mode_serves_probes_and_metrics_on_one_health_port(
    tmp_path: Path,
    fake_slack: FakeSlack,
    vps_url: str,
    postgres_schema_url: str,
    proxies: tuple[CuttableProxy, CuttableProxy],
) -> None:
    database, _slack = proxies
    port = free_port()
    env = local_env(
        fake_slack,
        VpsSimulator(),
        via(postgres_schema_url, database),
        vps_url=vps_url,
        SLACK_APP_TOKEN=fake_slack.app_token,
        HEALTH_PORT=str(port),
        METRICS_PORT=str(port),  # the same port: one small server answers both
        HOST="127.0.0.1",
    )
    socket_mode = FakeSocketMode(fake_slack).start()
    proc = start(["socket"], env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: status(base + "/readyz") == 200 or proc.poll() is not None, "Socket Mode ready", 60)
        assert proc.poll() is None, (tmp_path / "bot.log").read_text(errors="replace")
        metrics = get(base + "/metrics")
        assert metrics is not None and "\nsnapshot_bot_ready 1.0\n" in metrics.text
        assert 'snapshot_bot_build_info{python="' in metrics.text
        assert status(base + "/nope") == 404

        database.cut()
        eventually(lambda: status(base + "/readyz") == 503, "not ready without the database")
        assert status(base + "/livez") == 200
        after = get(base + "/metrics")  # what the "not ready" alert reads
        assert after is not None and "\nsnapshot_bot_ready 0.0\n" in after.text
        database.restore()
        eventually(lambda: status(base + "/readyz") == 200, "ready again")
    finally:
        stop(proc)
        socket_mode.stop()


def test_socket_mode_waits_for_slack_at_start_instead_of_exiting(
    tmp_path: Path,
    fake_slack: FakeSlack,
    vps_url: str,
    postgres_schema_url: str,
    proxies: tuple[CuttableProxy, CuttableProxy],
) -> None:
    database, slack = proxies
    slack.cut()  # apps.connections.open and auth.test both fail: it used to exit at once
    port = free_port()
    env = local_env(
        fake_slack,
        VpsSimulator(),
        via(postgres_schema_url, database),
        vps_url=vps_url,
        SLACK_API_URL=via(fake_slack.api_url, slack),
        SLACK_APP_TOKEN=fake_slack.app_token,
        HEALTH_PORT=str(port),
        HOST="127.0.0.1",
    )
    socket_mode = FakeSocketMode(fake_slack).start()
    proc = start(["socket"], env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: status(base + "/livez") == 200 or proc.poll() is not None, "Socket Mode to serve probes", 60)
        eventually(
            lambda: "could not connect to Slack" in (tmp_path / "bot.log").read_text(errors="replace"), "a retry"
        )
        assert proc.poll() is None, (tmp_path / "bot.log").read_text(errors="replace")
        assert status(base + "/readyz") == 503

        slack.restore()
        socket_mode.wait_for_connection(1, timeout=60)
        eventually(lambda: status(base + "/readyz") == 200, "ready once Slack answers", 60)
    finally:
        stop(proc)
        socket_mode.stop()
