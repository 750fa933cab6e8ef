"""VpsClient against the simulator (in-process and over loopback HTTP) and against hand-made answers."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.config import Secret
from bot.vps import (
    NotFound,
    Rejected,
    ServerList,
    SnapshotList,
    Unauthorized,
    Unavailable,
    VpsClient,
    VpsError,
)
from bot.vps.client import PAGES_WITHOUT_COUNT, page_bound
from devkit.simulator import CREATE_MESSAGE, LIMIT_MESSAGE, RESTORE_MESSAGE, VpsSimulator, start_in_thread

TOKEN = "vps_simulator_token"
BASE = "http://127.0.0.1:9/api/v1/"

Handler = Callable[[httpx.Request], httpx.Response]


def mock_client(handler: Handler, token: str | Secret = TOKEN, **kwargs: Any) -> tuple[VpsClient, list[httpx.Request]]:
    """A client whose every request goes to `handler`; returns the client and the requests it received."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    kwargs.setdefault("sleep", lambda _: None)
    return VpsClient(BASE, token, transport=httpx.MockTransport(record), **kwargs), seen


def answer(status: int, body: Any = None, *, raw: bytes | None = None, **headers: str) -> Handler:
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return lambda request: httpx.Response(status, content=content, headers=headers)


def raising(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


def page(results: list[Any], count: int | None = None, next_url: str | None = None) -> dict[str, Any]:
    return {"count": len(results) if count is None else count, "next": next_url, "results": results}


# --- snapshots: list


def test_list_snapshots_parses_the_documented_example(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    snapshots = vps_client.list_snapshots(12345)

    assert isinstance(snapshots, SnapshotList)
    assert (len(snapshots), snapshots.total, snapshots.complete) == (2, 2, True)
    first = snapshots[0]
    assert (first.id, first.server.id, first.server.name) == (801, 12345, "web-server-01")
    assert (first.name, first.status, first.size_mb) == ("pre-migration-snapshot", "completed", 5120)
    assert first.created_at == datetime(2025, 1, 15, 18, 30, tzinfo=UTC)
    assert first.description == "Before major migration"
    assert first.is_completed
    assert vps_sim.calls("GET", "snapshots/")[0].query == {"server_id": "12345"}


def test_list_all_snapshots_sends_no_filter(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    snapshots = vps_client.list_snapshots()
    assert {s.server.id for s in snapshots} == {12345, 12346, 12348}
    assert vps_sim.calls("GET", "snapshots/")[0].query == {}


def test_every_request_carries_the_bearer_token_and_json_content_type() -> None:
    client, seen = mock_client(answer(200, page([])))
    client.list_snapshots()
    client.close()

    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen[0].headers["Content-Type"] == "application/json"
    assert str(seen[0].url) == BASE + "snapshots/"


def test_timeouts_are_explicit_for_every_phase() -> None:
    client, seen = mock_client(answer(200, {}), timeout=4.5)
    client.account_me()
    assert seen[0].extensions["timeout"] == {"connect": 4.5, "read": 4.5, "write": 4.5, "pool": 4.5}


def test_base_url_without_trailing_slash_still_joins_paths() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=page([]))

    with VpsClient("http://127.0.0.1:9/api/v1", TOKEN, transport=httpx.MockTransport(handler)) as client:
        client.list_servers()
    assert seen == ["http://127.0.0.1:9/api/v1/servers/"]


def test_unknown_status_is_kept_as_it_came(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    vps_sim.add_snapshot(12347, "odd", status="archiving")
    (snapshot,) = vps_client.list_snapshots(12347)
    assert snapshot.status == "archiving"
    assert not snapshot.is_completed and not snapshot.is_in_progress


def test_defensive_parsing_of_odd_items(caplog: pytest.LogCaptureFixture) -> None:
    results = [
        {"id": 1, "name": "no-server", "status": "completed", "size_mb": None, "created_at": "not a date"},
        "garbage",
        {"name": "no-id"},
        {"id": "2", "server": 77, "created_at": "2025-01-15T20:30:00+02:00", "size_mb": "300"},
        {"id": 3, "server_id": 78, "created_at": "2025-01-15T18:30:00"},
        {"id": 4, "server": {"name": "nameless-id"}, "status": None, "description": None},
    ]
    client, _ = mock_client(answer(200, page(results, count=6)))
    with caplog.at_level(logging.WARNING, logger="bot.vps.client"):
        snapshots = client.list_snapshots(55)

    assert [s.id for s in snapshots] == [1, 2, 3, 4]
    assert snapshots.total == 6 and not snapshots.complete
    no_server, string_id, flat, nameless = snapshots
    assert (no_server.server.id, no_server.created_at, no_server.size_mb) == (55, None, None)
    assert string_id.server.id == 77 and string_id.size_mb == 300
    assert string_id.created_at == datetime(2025, 1, 15, 18, 30, tzinfo=UTC)  # converted to UTC
    assert flat.server.id == 78 and flat.created_at == datetime(2025, 1, 15, 18, 30, tzinfo=UTC)
    assert (nameless.server, nameless.status, nameless.description) == (
        no_server.server.__class__(55, "nameless-id"),
        "unknown",
        "",
    )
    messages = [r.getMessage() for r in caplog.records]
    assert any("not an object" in m for m in messages)
    assert any("without a usable id" in m for m in messages)


def test_a_list_the_client_cannot_understand_is_unavailable() -> None:
    client, _ = mock_client(answer(200, {"snapshots": []}))
    with pytest.raises(Unavailable, match="does not understand"):
        client.list_snapshots()


def test_a_bare_json_list_is_accepted() -> None:
    client, _ = mock_client(answer(200, [{"id": 5, "server": {"id": 1, "name": "a"}, "name": "n"}]))
    assert [s.id for s in client.list_snapshots()] == [5]


# --- snapshots: create


def test_create_snapshot(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    created = vps_client.create_snapshot(12347, "before-update", "Before the update")

    assert created.message == CREATE_MESSAGE
    assert created.snapshot.id == 900
    assert created.snapshot.server.name == "cache-01"
    assert created.snapshot.is_in_progress and created.snapshot.size_mb is None
    (call,) = vps_sim.calls("POST", "snapshots/")
    assert call.json == {"server_id": 12347, "name": "before-update", "description": "Before the update"}
    assert vps_client.list_snapshots(12347)[0].is_completed


def test_create_without_description_sends_only_the_required_fields(
    vps_client: VpsClient, vps_sim: VpsSimulator
) -> None:
    vps_client.create_snapshot(12347, "plain")
    assert vps_sim.calls("POST")[0].json == {"server_id": 12347, "name": "plain"}


def test_create_with_an_invalid_name_is_rejected_with_the_field_error(
    vps_client: VpsClient, vps_sim: VpsSimulator
) -> None:
    with pytest.raises(Rejected) as caught:
        vps_client.create_snapshot(12345, "no spaces allowed")

    assert caught.value.status_code == 400
    assert caught.value.api_message is not None and caught.value.api_message.startswith("name: Invalid name")
    assert str(caught.value).startswith("VPS.org rejected the request (HTTP 400): name: Invalid name")
    assert not caught.value.limit_reached
    assert vps_sim.snapshot_ids(12345) == [798, 801]


def test_create_over_the_limit_is_recognisable(vps_client: VpsClient) -> None:
    with pytest.raises(Rejected) as caught:
        vps_client.create_snapshot(12348, "sixth")
    assert caught.value.limit_reached
    assert caught.value.api_message == LIMIT_MESSAGE
    assert "HTTP 400" in str(caught.value)


def test_create_on_unknown_server_is_not_found(vps_client: VpsClient) -> None:
    with pytest.raises(NotFound, match=r"HTTP 404\): Server not found"):
        vps_client.create_snapshot(99999, "x")


def test_wrong_token_is_unauthorized(vps_sim: VpsSimulator) -> None:
    with (
        VpsClient(BASE, "vps_wrong", transport=vps_sim.transport()) as client,
        pytest.raises(Unauthorized) as caught,
    ):
        client.create_snapshot(12345, "x")
    assert caught.value.status_code == 401
    assert caught.value.api_message == "Invalid or missing authentication token"


def test_rotated_token_turns_into_unauthorized_on_reads(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.rotate_token("vps_new")
    with pytest.raises(Unauthorized):
        vps_client.list_servers()
    assert len(vps_sim.calls("GET")) == 1  # a 401 is not retried


def test_create_answer_that_cannot_be_read_is_outcome_unknown() -> None:
    client, _ = mock_client(answer(201, {"message": "ok"}))
    with pytest.raises(Unavailable) as caught:
        client.create_snapshot(1, "x")
    assert caught.value.outcome_unknown


# --- snapshots: restore


def test_restore_snapshot(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    result = vps_client.restore_snapshot(801)

    assert (result.status, result.message) == ("success", RESTORE_MESSAGE)
    assert (result.snapshot_id, result.snapshot_name) == (801, "pre-migration-snapshot")
    assert (result.server_id, result.server_name, result.server_status) == (
        12345,
        "web-server-01",
        "restoring",
    )
    (call,) = vps_sim.calls("POST", "snapshots/801/restore/")
    assert call.json is None and call.applied
    assert vps_sim.server_status(12345) == "restoring"


def test_restore_while_already_restoring_is_rejected(vps_client: VpsClient) -> None:
    vps_client.restore_snapshot(801)
    with pytest.raises(Rejected, match="not in a valid state for restoration"):
        vps_client.restore_snapshot(798)


def test_restore_of_an_unfinished_snapshot_is_rejected() -> None:
    sim = VpsSimulator(completion_delay=3600)
    with VpsClient(BASE, TOKEN, transport=sim.transport()) as client:
        created = client.create_snapshot(12347, "slow")
        with pytest.raises(Rejected, match="in_progress"):
            client.restore_snapshot(created.snapshot.id)


def test_restore_of_unknown_snapshot_is_not_found(vps_client: VpsClient) -> None:
    with pytest.raises(NotFound) as caught:
        vps_client.restore_snapshot(4040)
    assert caught.value.api_message == "Snapshot not found."


def test_restore_tolerates_a_sparse_answer() -> None:
    client, _ = mock_client(answer(200, {"status": "success"}))
    result = client.restore_snapshot(17)
    assert (result.status, result.snapshot_id, result.server_id, result.server_status) == (
        "success",
        17,
        0,
        "",
    )


# --- snapshots: delete


def test_delete_snapshot(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    assert vps_client.delete_snapshot(798) is None
    assert [s.id for s in vps_client.list_snapshots(12345)] == [801]
    assert [c.status for c in vps_sim.calls("DELETE")] == [204]


def test_delete_of_unknown_snapshot_is_not_found(vps_client: VpsClient) -> None:
    with pytest.raises(NotFound):
        vps_client.delete_snapshot(4040)


def test_delete_of_an_in_progress_snapshot_is_allowed() -> None:
    sim = VpsSimulator(completion_delay=3600)
    with VpsClient(BASE, TOKEN, transport=sim.transport()) as client:
        created = client.create_snapshot(12347, "slow")
        client.delete_snapshot(created.snapshot.id)
        assert client.list_snapshots(12347) == []


# --- servers and account


def test_list_servers(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    servers = vps_client.list_servers()
    assert isinstance(servers, ServerList) and servers.total == 5
    web = servers[0]
    assert (web.id, web.name, web.status, web.location) == (12345, "web-server-01", "active", "ams1")
    assert web.hostname and web.ip_address

    stopped = vps_client.list_servers(status="stopped")
    assert [s.name for s in stopped] == ["staging-01"]
    assert vps_sim.calls("GET", "servers/")[-1].query == {"status": "stopped"}


def test_server_location_given_as_an_object() -> None:
    client, _ = mock_client(answer(200, page([{"id": 1, "name": "a", "location": {"name": "Yerevan"}}])))
    (server,) = client.list_servers()
    assert (server.location, server.status) == ("Yerevan", "unknown")


def test_server_status_after_restore_comes_back_to_active(vps_sim: VpsSimulator) -> None:
    sim = VpsSimulator(restore_delay=0)
    with VpsClient(BASE, TOKEN, transport=sim.transport()) as client:
        client.restore_snapshot(801)
        assert {s.id: s.status for s in client.list_servers()}[12345] == "active"


def test_account_me(vps_client: VpsClient) -> None:
    assert vps_client.account_me()["email"] == "ops@example.com"


def test_account_me_with_a_bad_token_is_unauthorized(vps_sim: VpsSimulator) -> None:
    with VpsClient(BASE, "vps_bad", transport=vps_sim.transport()) as client, pytest.raises(Unauthorized):
        client.account_me()


# --- error messages from whatever body comes


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"detail": "Not allowed here"}', "application/json", "Not allowed here"),
        (b'{"error": "Server busy"}', "application/json", "Server busy"),
        (b'{"message": "Bad thing"}', "application/json", "Bad thing"),
        (b'{"name": ["Invalid name"]}', "application/json", "name: Invalid name"),
        (
            b'{"name": ["Too long", "Bad chars"], "server_id": ["Required"]}',
            "application/json",
            "name: Too long; Bad chars; server_id: Required",
        ),
        (b'{"errors": [{"field": "name", "msg": "bad"}]}', "application/json", "field: name; msg: bad"),
        (b'{"status": "error", "message": "Server is locked"}', "application/json", "Server is locked"),
        (b'["first problem", "second problem"]', "application/json", "first problem; second problem"),
        (b'"just a string"', "application/json", "just a string"),
        (b"Snapshot quota exceeded\n", "text/plain", "Snapshot quota exceeded"),
        (
            b"<html><head><title>409 Conflict</title><style>p{}</style></head>"
            b"<body><h1>Conflict</h1><p>Server &amp; snapshot busy</p></body></html>",
            "text/html",
            "409 Conflict: Conflict Server & snapshot busy",
        ),
        (b"<!DOCTYPE html><html><body><p>oops</p></body></html>", "", "oops"),
        (b"", "", None),
        (b"{}", "application/json", None),
    ],
)
def test_api_message_is_extracted_from_odd_bodies(body: bytes, content_type: str, expected: str | None) -> None:
    client, _ = mock_client(answer(409, raw=body, **({"content-type": content_type} if content_type else {})))
    with pytest.raises(Rejected) as caught:
        client.delete_snapshot(1)

    assert caught.value.api_message == expected
    assert caught.value.status_code == 409
    assert str(caught.value) == "VPS.org rejected the request (HTTP 409)" + (f": {expected}" if expected else "")


def test_long_plain_text_is_trimmed() -> None:
    client, _ = mock_client(answer(400, raw=b"x" * 5000, **{"content-type": "text/plain"}))
    with pytest.raises(Rejected) as caught:
        client.create_snapshot(1, "x")
    assert caught.value.api_message is not None
    assert len(caught.value.api_message) == 300 and caught.value.api_message.endswith("…")


@pytest.mark.parametrize("status", [403, 409, 422, 418])
def test_other_client_errors_are_rejected_with_their_status(status: int) -> None:
    client, seen = mock_client(answer(status, {"detail": "nope"}))
    with pytest.raises(Rejected) as caught:
        client.list_snapshots()
    assert caught.value.status_code == status
    assert f"HTTP {status}" in str(caught.value)
    assert len(seen) == 1  # not retried


def test_a_redirect_is_not_followed() -> None:
    client, seen = mock_client(answer(302, raw=b"", location="https://elsewhere.example/steal"))
    with pytest.raises(Unavailable, match="unexpected answer"):
        client.list_servers()
    assert len(seen) == 1


# --- retries: GET only


def test_get_is_retried_on_5xx_with_exponential_backoff(
    vps_client: VpsClient, vps_sim: VpsSimulator, vps_sleeps: list[float]
) -> None:
    vps_sim.faults.fail_next(503, times=2)

    assert len(vps_client.list_snapshots(12345)) == 2
    assert vps_sleeps == [0.5, 1.0]
    assert [c.status for c in vps_sim.calls("GET")] == [503, 503, 200]


def test_get_gives_up_after_the_configured_retries(
    vps_client: VpsClient, vps_sim: VpsSimulator, vps_sleeps: list[float]
) -> None:
    vps_sim.faults.fail_next(500, times=10, body='{"detail": "database on fire"}')

    with pytest.raises(Unavailable) as caught:
        vps_client.list_servers()
    assert caught.value.status_code == 500
    assert str(caught.value) == "VPS.org had a server error (HTTP 500): database on fire"
    assert not caught.value.outcome_unknown
    assert vps_sleeps == [0.5, 1.0, 2.0]
    assert len(vps_sim.calls("GET")) == 4


def test_get_honours_retry_after_on_429(vps_client: VpsClient, vps_sim: VpsSimulator, vps_sleeps: list[float]) -> None:
    vps_sim.faults.fail_next(429, retry_after=7)
    assert vps_client.account_me()
    assert vps_sleeps == [7.0]


def test_retry_after_is_capped(vps_sim: VpsSimulator) -> None:
    sleeps: list[float] = []
    vps_sim.faults.fail_next(429, retry_after=3600)
    with VpsClient(BASE, TOKEN, transport=vps_sim.transport(), max_retry_after=30, sleep=sleeps.append) as client:
        client.list_servers()
    assert sleeps == [30.0]


def test_retry_after_as_an_http_date() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),  # in the past: now
            httpx.Response(200, json={"id": 1}),
        ]
    )
    sleeps: list[float] = []
    client, _ = mock_client(lambda request: next(answers), sleep=sleeps.append)
    assert client.account_me() == {"id": 1}
    assert sleeps == [0.0]


def test_get_is_retried_on_connection_errors_and_timeouts() -> None:
    failures: list[type[httpx.TransportError]] = [
        httpx.ConnectError,
        httpx.ReadTimeout,
        httpx.RemoteProtocolError,
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            raise failures.pop(0)("simulated", request=request)
        return httpx.Response(200, json=page([]))

    sleeps: list[float] = []
    client, seen = mock_client(handler, sleep=sleeps.append, backoff_seconds=0.25)
    assert client.list_servers() == []
    assert len(seen) == 4
    assert sleeps == [0.25, 0.5, 1.0]


def test_get_retries_can_be_turned_off() -> None:
    client, seen = mock_client(answer(502, raw=b"Bad gateway"), get_retries=0)
    with pytest.raises(Unavailable, match=r"HTTP 502\): Bad gateway"):
        client.list_servers()
    assert len(seen) == 1


def test_a_non_json_success_body_is_unavailable_for_a_get(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.non_json_next()
    with pytest.raises(Unavailable) as caught:
        vps_client.list_snapshots()
    assert caught.value.status_code == 200
    assert not caught.value.outcome_unknown
    assert caught.value.api_message is not None and "Bad Gateway" in caught.value.api_message


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("status", [500, 502, 503])
def test_post_and_delete_are_never_retried_and_a_5xx_is_outcome_unknown(
    vps_client: VpsClient, vps_sim: VpsSimulator, vps_sleeps: list[float], method: str, status: int
) -> None:
    vps_sim.faults.fail_next(status, times=5, methods={method})

    with pytest.raises(Unavailable) as caught:
        if method == "POST":
            vps_client.restore_snapshot(801)
        else:
            vps_client.delete_snapshot(801)

    assert caught.value.outcome_unknown
    assert caught.value.status_code == status
    assert "check before trying again" in str(caught.value)
    assert len(vps_sim.calls(method)) == 1
    assert vps_sleeps == []


def test_429_on_a_post_is_a_refusal_with_retry_after(
    vps_client: VpsClient, vps_sim: VpsSimulator, vps_sleeps: list[float]
) -> None:
    vps_sim.faults.fail_next(429, retry_after=12, methods={"POST"})

    with pytest.raises(Unavailable) as caught:
        vps_client.create_snapshot(12347, "x")

    assert not caught.value.outcome_unknown
    assert caught.value.retry_after == 12.0
    assert "rate limiting" in str(caught.value) and "12s" in str(caught.value)
    assert len(vps_sim.calls("POST")) == 1
    assert vps_sleeps == []
    assert vps_sim.snapshot_ids(12347) == []


# --- outcome unknown


def test_connection_dropped_after_the_create_was_applied_is_outcome_unknown(
    vps_client: VpsClient, vps_sim: VpsSimulator
) -> None:
    vps_sim.faults.drop_next(after_apply=True)

    with pytest.raises(Unavailable) as caught:
        vps_client.create_snapshot(12347, "maybe")

    assert caught.value.outcome_unknown
    assert "may or may not have been carried out" in str(caught.value)
    (call,) = vps_sim.calls("POST")
    assert call.applied and call.status is None
    assert [s.name for s in vps_client.list_snapshots(12347)] == ["maybe"]  # it did happen


def test_connection_dropped_before_a_restore_is_applied_is_still_outcome_unknown(
    vps_client: VpsClient, vps_sim: VpsSimulator
) -> None:
    vps_sim.faults.drop_next(methods={"POST"})

    with pytest.raises(Unavailable) as caught:
        vps_client.restore_snapshot(801)

    assert caught.value.outcome_unknown  # the client cannot tell the two drops apart
    assert not vps_sim.calls("POST")[0].applied
    assert vps_sim.server_status(12345) == "active"


@pytest.mark.parametrize(
    ("exc_type", "unknown"),
    [
        (httpx.ConnectError, False),
        (httpx.ConnectTimeout, False),
        (httpx.PoolTimeout, False),
        (httpx.ReadTimeout, True),
        (httpx.WriteTimeout, True),
        (httpx.ReadError, True),
        (httpx.WriteError, True),
        (httpx.RemoteProtocolError, True),
    ],
)
def test_transport_errors_on_post_and_delete(exc_type: type[httpx.TransportError], unknown: bool) -> None:
    client, seen = mock_client(raising(exc_type))

    for call in (lambda: client.create_snapshot(1, "x"), lambda: client.delete_snapshot(2)):
        with pytest.raises(Unavailable) as caught:
            call()
        assert caught.value.outcome_unknown is unknown
        assert ("nothing was changed" in str(caught.value)) is not unknown
    assert len(seen) == 2


def test_a_non_json_answer_to_a_post_is_outcome_unknown(vps_client: VpsClient, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.non_json_next(methods={"POST"})
    with pytest.raises(Unavailable) as caught:
        vps_client.restore_snapshot(801)
    assert caught.value.outcome_unknown


# --- pagination


def test_pagination_follows_next_across_pages() -> None:
    sim = VpsSimulator(seed=False, completion_delay=0)
    sim.add_server(1, "big")
    for i in range(250):
        sim.add_snapshot(1, f"s{i}", created_at=datetime(2025, 1, 1, tzinfo=UTC))
    with VpsClient(BASE, TOKEN, transport=sim.transport()) as client:
        snapshots = client.list_snapshots(1)

    assert (len(snapshots), snapshots.total, snapshots.complete) == (250, 250, True)
    assert len({s.id for s in snapshots}) == 250
    gets = sim.calls("GET")
    assert [c.query for c in gets] == [
        {"server_id": "1"},
        {"server_id": "1", "page": "2"},
        {"server_id": "1", "page": "3"},
    ]


def test_pagination_over_servers() -> None:
    sim = VpsSimulator(page_size=2)
    with VpsClient(BASE, TOKEN, transport=sim.transport()) as client:
        servers = client.list_servers()
    assert [s.id for s in servers] == [12345, 12346, 12347, 12348, 12349]
    assert len(sim.calls("GET")) == 3


def test_relative_next_links_are_resolved_against_the_page() -> None:
    pages = {
        "/api/v1/snapshots/": page([{"id": 1}], count=3, next_url="?page=2"),
        "/api/v1/snapshots/?page=2": page([{"id": 2}], count=3, next_url="/api/v1/snapshots/?page=3"),
        "/api/v1/snapshots/?page=3": page([{"id": 3}], count=3),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.raw_path.decode()])

    client, seen = mock_client(handler)
    assert [s.id for s in client.list_snapshots()] == [1, 2, 3]
    assert len(seen) == 3


def test_a_next_link_to_another_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=page([{"id": 1}], count=2, next_url="https://evil.example/api/v1/x/?page=2"))

    client, seen = mock_client(handler)
    # Records are collected on the client's own logger: an earlier test in the same worker may have reconfigured
    # the root logger's handlers (configure_logging), which made reading them through caplog flaky.
    records: list[logging.LogRecord] = []
    collector = logging.Handler(logging.WARNING)
    collector.emit = records.append  # type: ignore[method-assign]
    client_logger = logging.getLogger("bot.vps.client")
    client_logger.addHandler(collector)
    try:
        snapshots = client.list_snapshots()
    finally:
        client_logger.removeHandler(collector)

    assert (len(snapshots), snapshots.total, snapshots.complete) == (1, 2, False)
    assert [str(r.url) for r in seen] == [BASE + "snapshots/"]
    assert any("another host" in r.getMessage() for r in records)


@pytest.mark.parametrize("next_url", ["http://127.0.0.1:10/api/v1/snapshots/?page=2", "https://127.0.0.1:9/x/"])
def test_a_next_link_to_another_port_or_scheme_is_refused(next_url: str) -> None:
    client, seen = mock_client(answer(200, page([{"id": 1}], count=2, next_url=next_url)))
    assert len(client.list_snapshots()) == 1
    assert len(seen) == 1


def test_count_above_results_without_next_is_reported_not_guessed(caplog: pytest.LogCaptureFixture) -> None:
    client, seen = mock_client(answer(200, page([{"id": 1}, {"id": 2}], count=40)))
    with caplog.at_level(logging.WARNING, logger="bot.vps.client"):
        snapshots = client.list_snapshots()
    assert (len(snapshots), snapshots.total) == (2, 40)
    assert len(seen) == 1
    assert any("reported 40" in r.getMessage() for r in caplog.records)


def test_a_next_loop_stops() -> None:
    client, seen = mock_client(answer(200, page([{"id": 1}], count=1, next_url=BASE + "snapshots/?page=2")))
    assert [s.id for s in client.list_snapshots()] == [1]  # the repeat on the second page is dropped too
    assert len(seen) == 2


def runaway(count: int | None, per_page: int = 1) -> Handler:
    """An API whose `next` chain never ends: every page links to a page it has not sent yet."""
    counter = iter(range(10**9))

    def handler(request: httpx.Request) -> httpx.Response:
        n = next(counter)
        body: dict[str, Any] = {"results": [{"id": n * per_page + k} for k in range(per_page)]}
        body["next"] = f"{BASE}snapshots/?page={n + 2}"
        if count is not None:
            body["count"] = count
        return httpx.Response(200, json=body)

    return handler


def test_a_runaway_next_chain_stops_at_a_bound_derived_from_the_count() -> None:
    client, seen = mock_client(runaway(count=40))
    snapshots = client.list_snapshots()
    # 40 items at 1 a page, 5 % for an account growing while it is read, two pages more: 44, not 10,000.
    assert len(seen) == page_bound(40, 1) == 44
    assert (len(snapshots), snapshots.complete) == (44, False)  # more than `count`, and still not whole


def test_a_runaway_chain_without_a_count_stops_at_the_fixed_cap_and_says_it_is_incomplete() -> None:
    client, seen = mock_client(runaway(count=None, per_page=3))
    snapshots = client.list_snapshots()
    assert len(seen) == PAGES_WITHOUT_COUNT
    assert not snapshots.complete and snapshots.total > len(snapshots)


def test_an_empty_page_that_links_on_stops_the_listing() -> None:
    client, seen = mock_client(answer(200, page([], count=50_000, next_url=BASE + "snapshots/?page=2")))
    snapshots = client.list_snapshots()
    assert len(seen) == 1 and not snapshots.complete


def test_an_account_above_ten_thousand_snapshots_is_listed_whole() -> None:
    """Issue 27 §1: 12,003 snapshots on 2,403 servers came back as 10,000 (the client stopped after 100 pages)."""
    sim = VpsSimulator(seed=False)
    for s in range(2_403):
        sim.add_server(30_000 + s, f"srv-{s}")
    for n in range(12_003):
        sim.add_snapshot(30_000 + n % 2_403, f"snap-{n}", created_at=datetime(2025, 1, 1, tzinfo=UTC))
    with VpsClient(BASE, TOKEN, transport=sim.transport()) as client:
        snapshots = client.list_snapshots()
        servers = client.list_servers()
    assert (len(snapshots), snapshots.total, snapshots.complete) == (12_003, 12_003, True)
    assert len({s.id for s in snapshots}) == 12_003
    assert (len(servers), servers.complete) == (2_403, True)
    assert len(sim.calls("GET")) == 121 + 25  # every page, each once, one after another


# --- the token stays secret


def test_the_token_appears_in_no_log_record_exception_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    secret = "vps_s3cr3t_t0k3n_value"
    sim = VpsSimulator(secret, completion_delay=0)
    errors: list[BaseException] = []
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "bot"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    base_url, stop = start_in_thread(sim)
    try:
        clients = [
            VpsClient(base_url, Secret(secret), sleep=lambda _: None),
            VpsClient(BASE, secret, transport=sim.transport(), sleep=lambda _: None),
        ]
        for client in clients:
            client.list_snapshots(12345)
            client.create_snapshot(12347, "ok")
            sim.faults.fail_next(503, times=2)
            client.list_servers()
            for bad in (
                lambda c=client: c.create_snapshot(12348, "over-limit"),
                lambda c=client: c.restore_snapshot(4040),
                lambda c=client: (sim.faults.drop_next(), c.delete_snapshot(801)),
                lambda c=client: (
                    sim.faults.fail_next(429, retry_after=1, methods={"POST"}),
                    c.restore_snapshot(801),
                ),
            ):
                with pytest.raises(VpsError) as caught:
                    bad()
                errors.append(caught.value)
            assert secret not in repr(client) and secret not in str(vars(client))
            client.close()
        with VpsClient(base_url, "vps_wrong_" + secret[::-1], sleep=lambda _: None) as wrong:
            with pytest.raises(Unauthorized) as caught:
                wrong.account_me()
            errors.append(caught.value)
    finally:
        stop()
        for name in ("httpx", "httpcore", "bot"):
            logging.getLogger(name).setLevel(logging.NOTSET)

    assert len(errors) == 9
    for error in errors:
        assert secret not in str(error) and secret not in repr(error)
        assert secret not in str(error.api_message)
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # DEBUG logging really was on
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.args)


def test_a_token_echoed_back_by_the_api_is_scrubbed() -> None:
    secret = "vps_echoed_secret"
    client, _ = mock_client(answer(401, {"detail": f"Token {secret} is not valid"}), token=secret)
    with pytest.raises(Unauthorized) as caught:
        client.list_servers()
    assert secret not in str(caught.value)
    assert caught.value.api_message == "Token [redacted] is not valid"


# --- over real loopback HTTP


@pytest.fixture
def served(vps_sim: VpsSimulator) -> Iterator[str]:
    base_url, stop = start_in_thread(vps_sim)
    yield base_url
    stop()


def test_full_cycle_over_loopback_http(served: str, vps_sim: VpsSimulator) -> None:
    with VpsClient(served, TOKEN, timeout=5) as client:
        assert client.account_me()["status"] == "active"
        created = client.create_snapshot(12347, "over-http", "via a socket")
        assert client.list_snapshots(12347)[0].id == created.snapshot.id
        assert client.restore_snapshot(created.snapshot.id).server_status == "restoring"
        client.delete_snapshot(created.snapshot.id)
        with pytest.raises(NotFound):
            client.delete_snapshot(created.snapshot.id)
        with pytest.raises(Rejected) as caught:
            client.create_snapshot(12348, "sixth")
        assert caught.value.limit_reached
    assert [(c.method, c.status) for c in vps_sim.requests] == [
        ("GET", 200),
        ("POST", 201),
        ("GET", 200),
        ("POST", 200),
        ("DELETE", 204),
        ("DELETE", 404),
        ("POST", 400),
    ]


def test_a_dropped_connection_over_http_is_outcome_unknown(served: str, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.drop_next(after_apply=True)
    with VpsClient(served, TOKEN, timeout=5) as client:
        with pytest.raises(Unavailable) as caught:
            client.delete_snapshot(801)
        assert caught.value.outcome_unknown
        assert 801 not in [s.id for s in client.list_snapshots()]


def test_a_read_timeout_over_http_is_outcome_unknown_for_a_post(served: str, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.latency = 5.0  # far beyond the client's timeout; nothing waits for it
    with VpsClient(served, TOKEN, timeout=0.5) as client, pytest.raises(Unavailable) as caught:
        client.create_snapshot(12347, "slow")
    assert caught.value.outcome_unknown
    assert "timed out waiting for the answer" in str(caught.value)


def test_a_refused_connection_is_certainly_not_applied() -> None:
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    with VpsClient(f"http://127.0.0.1:{port}/api/v1/", TOKEN, timeout=2, sleep=sleeps.append) as client:
        with pytest.raises(Unavailable) as caught:
            client.restore_snapshot(801)
        assert not caught.value.outcome_unknown
        assert "nothing was changed" in str(caught.value)
        with pytest.raises(Unavailable):
            client.list_servers()
    assert len(sleeps) == 3  # the GET was retried, the POST was not
