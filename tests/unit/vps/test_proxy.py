"""The environment's proxy settings reach VPS.org calls even though the bot wraps httpx's transport (for metrics),
which makes httpx stop reading them itself."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.metrics import Metrics
from bot.vps.proxy import environment_proxy
from bot.wiring import build_core

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*PROXY_VARIABLES, "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself, and remembers the request line it was sent."""

    seen: list[str] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        body = json.dumps({"id": 1, "email": "ops@example.org"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Proxy,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_proxy_is_chosen_by_the_api_urls_scheme(clean_proxy_env: pytest.MonkeyPatch) -> None:
    clean_proxy_env.setenv("HTTPS_PROXY", "http://secure-proxy:3128")
    clean_proxy_env.setenv("HTTP_PROXY", "http://plain-proxy:3128")
    assert environment_proxy("https://api.vps.org/api/v1/") == "http://secure-proxy:3128"
    assert environment_proxy("http://api.vps.org/api/v1/") == "http://plain-proxy:3128"


def test_all_proxy_is_the_fallback_and_no_proxy_wins(clean_proxy_env: pytest.MonkeyPatch) -> None:
    clean_proxy_env.setenv("ALL_PROXY", "http://any-proxy:3128")
    assert environment_proxy("https://api.vps.org/api/v1/") == "http://any-proxy:3128"
    clean_proxy_env.setenv("NO_PROXY", "internal.example,api.vps.org")
    assert environment_proxy("https://api.vps.org/api/v1/") is None


def test_nothing_set_means_a_direct_connection(clean_proxy_env: pytest.MonkeyPatch) -> None:
    assert environment_proxy("https://api.vps.org/api/v1/") is None


def test_the_bots_vps_calls_go_through_the_environments_proxy(
    clean_proxy_env: pytest.MonkeyPatch, loopback_proxy: tuple[str, list[str]], tmp_path: Path
) -> None:
    """Built as the server builds it (with metrics, so with the wrapped transport): a host that only the proxy can
    reach (`.invalid` never resolves) is reached, and the proxy saw the absolute URL."""
    proxy_url, seen = loopback_proxy
    clean_proxy_env.setenv("HTTP_PROXY", proxy_url)
    settings = load_settings(
        {
            "VPS_API_URL": "http://vps.invalid/api/v1/",
            "VPS_API_TOKEN": "t0ken-for-the-proxy-test",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        },
        dotenv_path=None,
    )
    core = build_core(settings, metrics=Metrics())
    try:
        assert core.vps.account_me()["id"] == 1
    finally:
        core.close()
    assert seen == ["http://vps.invalid/api/v1/account/me/"]
