"""The simulator speaks the VPS.org API as documented: checked on the wire with a plain httpx client."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devkit.simulator import (
    CREATE_MESSAGE,
    LIMIT_MESSAGE,
    RESTORE_MESSAGE,
    DroppedConnection,
    VpsSimulator,
    start_in_thread,
)

TOKEN = "vps_simulator_token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def http_for(sim: VpsSimulator, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        base_url="http://127.0.0.1:9/api/v1/",
        transport=sim.transport(),
        headers=AUTH if headers is None else headers,
    )


@pytest.fixture
def http(vps_sim: VpsSimulator) -> Iterator[httpx.Client]:
    with http_for(vps_sim) as client:
        yield client


def test_seeded_with_the_documented_example(http: httpx.Client) -> None:
    response = http.get("snapshots/", params={"server_id": 12345})

    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": 801,
                "server": {"id": 12345, "name": "web-server-01"},
                "name": "pre-migration-snapshot",
                "status": "completed",
                "size_mb": 5120,
                "created_at": "2025-01-15T18:30:00Z",
                "description": "Before major migration",
            },
            {
                "id": 798,
                "server": {"id": 12345, "name": "web-server-01"},
                "name": "weekly-snapshot-2025-01-08",
                "status": "completed",
                "size_mb": 4856,
                "created_at": "2025-01-08T12:00:00Z",
                "description": "Weekly snapshot",
            },
        ],
    }


def test_seed_has_a_server_at_the_limit_and_one_without_snapshots(vps_sim: VpsSimulator) -> None:
    assert len(vps_sim.snapshot_ids(12348)) == 5
    assert vps_sim.server_status(12348) == "stopped"
    assert vps_sim.snapshot_ids(12347) == []


def test_missing_or_wrong_token_is_401_on_every_route(vps_sim: VpsSimulator) -> None:
    routes = [
        ("GET", "snapshots/"),
        ("POST", "snapshots/"),
        ("POST", "snapshots/801/restore/"),
        ("DELETE", "snapshots/801/"),
        ("GET", "servers/"),
        ("GET", "account/me/"),
    ]
    for headers in ({}, {"Authorization": "Bearer vps_wrong"}, {"Authorization": TOKEN}):
        with http_for(vps_sim, headers) as client:
            for method, path in routes:
                response = client.request(method, path, json={"server_id": 12345, "name": "x"})
                assert response.status_code == 401, (method, path, headers)
                assert response.json() == {"detail": "Invalid or missing authentication token"}
    assert vps_sim.snapshot_ids(12345) == [798, 801]  # nothing was changed
    assert all(not r.authorized and not r.applied for r in vps_sim.requests)


def test_create_answers_201_in_progress_then_completes_after_the_delay() -> None:
    clock = FakeClock()
    sim = VpsSimulator(completion_delay=300, clock=clock)
    with http_for(sim) as http:
        response = http.post("snapshots/", json={"server_id": 12347, "name": "before-update", "description": "d"})

        assert response.status_code == 201
        body = response.json()
        assert body["id"] == 900
        assert body["server"] == {"id": 12347, "name": "cache-01"}
        assert (body["status"], body["size_mb"], body["message"]) == ("in_progress", None, CREATE_MESSAGE)
        assert body["description"] == "d"

        clock.now += 299
        assert sim.snapshot_status(900) == "in_progress"
        clock.now += 1
        listed = http.get("snapshots/", params={"server_id": 12347}).json()["results"]
        assert listed[0]["status"] == "completed"
        assert isinstance(listed[0]["size_mb"], int)


def test_zero_delay_completes_on_the_next_read(http: httpx.Client, vps_sim: VpsSimulator) -> None:
    created = http.post("snapshots/", json={"server_id": 12347, "name": "quick"}).json()
    assert created["status"] == "in_progress"
    assert vps_sim.snapshot_status(created["id"]) == "completed"


def test_new_ids_count_up_from_900(http: httpx.Client) -> None:
    ids = [http.post("snapshots/", json={"server_id": 12347, "name": f"s{i}"}).json()["id"] for i in range(3)]
    assert ids == [900, 901, 902]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "ok"}, "server_id"),
        ({"server_id": "12345", "name": "ok"}, "server_id"),
        ({"server_id": True, "name": "ok"}, "server_id"),
        ({"server_id": 12345}, "name"),
        ({"server_id": 12345, "name": ""}, "name"),
        ({"server_id": 12345, "name": "has space"}, "name"),
        ({"server_id": 12345, "name": "dot.ted"}, "name"),
        ({"server_id": 12345, "name": "x" * 101}, "name"),
        ({"server_id": 12345, "name": "ok", "description": 5}, "description"),
    ],
)
def test_create_rejects_invalid_parameters_with_field_errors(
    http: httpx.Client, vps_sim: VpsSimulator, body: dict[str, Any], field: str
) -> None:
    response = http.post("snapshots/", json=body)

    assert response.status_code == 400
    assert field in response.json()
    assert vps_sim.snapshot_ids(12345) == [798, 801]


def test_create_accepts_the_longest_valid_name(http: httpx.Client) -> None:
    response = http.post("snapshots/", json={"server_id": 12347, "name": "A-z_0" * 20})
    assert response.status_code == 201


def test_create_rejects_a_body_that_is_not_json(http: httpx.Client) -> None:
    response = http.post("snapshots/", content=b"server_id=12345&name=x")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]
    assert http.post("snapshots/", content=b"").status_code == 400


def test_create_on_unknown_server_is_404(http: httpx.Client) -> None:
    response = http.post("snapshots/", json={"server_id": 99999, "name": "x"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Server not found."}


def test_sixth_snapshot_is_refused_with_the_limit_message(http: httpx.Client, vps_sim: VpsSimulator) -> None:
    response = http.post("snapshots/", json={"server_id": 12348, "name": "sixth"})

    assert response.status_code == 400
    assert response.json() == {"error": LIMIT_MESSAGE}
    assert len(vps_sim.snapshot_ids(12348)) == 5


def test_in_progress_snapshots_count_towards_the_limit() -> None:
    sim = VpsSimulator(completion_delay=3600)
    with http_for(sim) as http:
        statuses = [http.post("snapshots/", json={"server_id": 12347, "name": f"s{i}"}).status_code for i in range(6)]
    assert statuses == [201] * 5 + [400]


def test_restore_succeeds_with_the_documented_body_and_the_server_comes_back() -> None:
    clock = FakeClock()
    sim = VpsSimulator(restore_delay=600, clock=clock)
    with http_for(sim) as http:
        response = http.post("snapshots/801/restore/")

        assert response.status_code == 200
        assert response.json() == {
            "status": "success",
            "message": RESTORE_MESSAGE,
            "snapshot": {"id": 801, "name": "pre-migration-snapshot", "created_at": "2025-01-15T18:30:00Z"},
            "server": {"id": 12345, "name": "web-server-01", "status": "restoring"},
        }
        again = http.post("snapshots/798/restore/")
        assert again.status_code == 400
        assert "valid state" in again.json()["error"]

        clock.now += 600
        servers = {s["id"]: s["status"] for s in http.get("servers/").json()["results"]}
        assert servers[12345] == "active"


def test_restore_of_a_snapshot_not_completed_is_400() -> None:
    sim = VpsSimulator(completion_delay=3600)
    with http_for(sim) as http:
        snapshot_id = http.post("snapshots/", json={"server_id": 12347, "name": "slow"}).json()["id"]
        response = http.post(f"snapshots/{snapshot_id}/restore/")
    assert response.status_code == 400
    assert "in_progress" in response.json()["error"]
    assert sim.server_status(12347) == "active"


def test_restore_of_a_suspended_server_is_400(http: httpx.Client, vps_sim: VpsSimulator) -> None:
    snapshot_id = vps_sim.add_snapshot(12349, "old")
    response = http.post(f"snapshots/{snapshot_id}/restore/")
    assert response.status_code == 400
    assert vps_sim.server_status(12349) == "suspended"


def test_restore_and_delete_of_unknown_snapshot_are_404(http: httpx.Client) -> None:
    assert http.post("snapshots/4040/restore/").json() == {"detail": "Snapshot not found."}
    assert http.post("snapshots/4040/restore/").status_code == 404
    assert http.delete("snapshots/4040/").status_code == 404


def test_delete_answers_204_and_allows_in_progress() -> None:
    sim = VpsSimulator(completion_delay=3600)
    with http_for(sim) as http:
        snapshot_id = http.post("snapshots/", json={"server_id": 12347, "name": "doomed"}).json()["id"]
        response = http.delete(f"snapshots/{snapshot_id}/")
        assert (response.status_code, response.content) == (204, b"")
        assert http.delete("snapshots/801/").status_code == 204
    assert sim.snapshot_ids(12347) == []
    assert 801 not in sim.snapshot_ids()


def test_pagination_links_are_absolute_and_only_where_there_are_more_pages() -> None:
    sim = VpsSimulator(page_size=2)
    with http_for(sim) as http:
        first = http.get("snapshots/", params={"server_id": 12348}).json()
        assert first["count"] == 5 and len(first["results"]) == 2
        assert first["previous"] is None
        assert first["next"] == "http://127.0.0.1:9/api/v1/snapshots/?server_id=12348&page=2"
        third = http.get(first["next"].replace("page=2", "page=3")).json()
        assert third["next"] is None and len(third["results"]) == 1
        assert third["previous"].endswith("page=2")
        assert http.get("snapshots/", params={"page": 99}).status_code == 404


def test_list_rejects_a_bad_server_id_and_filters_servers_by_status(http: httpx.Client) -> None:
    assert http.get("snapshots/", params={"server_id": "abc"}).status_code == 400
    stopped = http.get("servers/", params={"status": "stopped"}).json()
    assert [s["name"] for s in stopped["results"]] == ["staging-01"]
    assert stopped["count"] == 1


def test_unknown_routes_and_methods(http: httpx.Client) -> None:
    assert http.get("backups/").status_code == 404
    assert http.get("http://127.0.0.1:9/other/").status_code == 404
    assert http.put("snapshots/801/").status_code == 405


def test_account_me(http: httpx.Client) -> None:
    response = http.get("account/me/")
    assert response.status_code == 200
    assert response.json()["status"] == "active"


def test_requests_are_recorded_without_the_token(http: httpx.Client, vps_sim: VpsSimulator) -> None:
    http.post("snapshots/", json={"server_id": 12347, "name": "rec"})
    http.get("snapshots/", params={"server_id": 12347})

    post = vps_sim.calls("POST", "snapshots/")
    assert len(post) == 1
    assert post[0].json == {"server_id": 12347, "name": "rec"}
    assert (post[0].status, post[0].applied, post[0].authorized) == (201, True, True)
    get = vps_sim.calls("GET")[0]
    assert (get.path, get.query, get.applied) == ("/api/v1/snapshots/", {"server_id": "12347"}, False)
    assert TOKEN not in repr(vps_sim.requests)


def test_fail_next_answers_the_status_without_changing_anything(http: httpx.Client, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.fail_next(429, retry_after=7, methods={"POST"})

    assert http.get("servers/").status_code == 200  # a GET does not consume a POST-only fault
    response = http.post("snapshots/", json={"server_id": 12347, "name": "x"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert vps_sim.snapshot_ids(12347) == []
    assert vps_sim.calls("POST")[0].fault == "fail"
    assert http.post("snapshots/", json={"server_id": 12347, "name": "x"}).status_code == 201


def test_fail_next_counts_and_uses_the_given_body(http: httpx.Client, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.fail_next(503, times=2, body="upstream down")
    assert [http.get("servers/").status_code for _ in range(3)] == [503, 503, 200]
    vps_sim.faults.fail_next(500)
    assert vps_sim.faults.pending() == 1
    assert http.get("servers/").text == '{"detail": "Simulated failure (Internal Server Error)"}'


def test_non_json_next_answers_200_with_html(http: httpx.Client, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.non_json_next()
    response = http.get("snapshots/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<!DOCTYPE html>")


def test_drop_before_and_after_apply_in_process(http: httpx.Client, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.drop_next()
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("snapshots/", json={"server_id": 12347, "name": "lost"})
    vps_sim.faults.drop_next(after_apply=True)
    with pytest.raises(DroppedConnection):
        http.post("snapshots/", json={"server_id": 12347, "name": "made"})

    first, second = vps_sim.calls("POST")
    assert (first.applied, first.status, first.fault) == (False, None, "drop")
    assert (second.applied, second.status, second.fault) == (True, None, "drop_after_apply")
    assert vps_sim.snapshot_ids(12347) == [900]


def test_rotate_token_makes_the_old_one_401(http: httpx.Client, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.rotate_token("vps_new_token")
    assert http.get("servers/").status_code == 401
    with http_for(vps_sim, {"Authorization": "Bearer vps_new_token"}) as fresh:
        assert fresh.get("servers/").status_code == 200


def test_concurrent_creates_never_exceed_the_limit() -> None:
    sim = VpsSimulator(completion_delay=3600)
    statuses: list[int] = []
    barrier = threading.Barrier(12)

    def create(i: int) -> None:
        with http_for(sim) as http:
            barrier.wait(timeout=10)
            statuses.append(http.post("snapshots/", json={"server_id": 12347, "name": f"c{i}"}).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(statuses) == [201] * 5 + [400] * 7
    assert len(sim.snapshot_ids(12347)) == 5


def test_state_helpers(vps_sim: VpsSimulator) -> None:
    vps_sim.add_server(20000, "extra", status="stopped", location="fra1")
    snapshot_id = vps_sim.add_snapshot(20000, "pending", status="in_progress")
    assert vps_sim.snapshot_status(snapshot_id) == "in_progress"  # helpers' in-progress waits to be completed
    vps_sim.complete_snapshot(snapshot_id)
    assert vps_sim.snapshot_status(snapshot_id) == "completed"
    vps_sim.set_server_status(20000, "suspended")
    assert vps_sim.server_status(20000) == "suspended"
    assert vps_sim.snapshot_status(123) is None and vps_sim.server_status(123) is None
    with pytest.raises(ValueError):
        vps_sim.add_snapshot(424242, "no-such-server")
    with pytest.raises(ValueError):
        vps_sim.add_snapshot(20000, "dup", snapshot_id=snapshot_id)


def test_unseeded_simulator_is_empty() -> None:
    sim = VpsSimulator(seed=False)
    with http_for(sim) as http:
        assert http.get("servers/").json() == {"count": 0, "next": None, "previous": None, "results": []}


# --- over real loopback HTTP


@pytest.fixture
def served(vps_sim: VpsSimulator) -> Iterator[str]:
    base_url, stop = start_in_thread(vps_sim)
    yield base_url
    stop()


def test_serves_over_loopback_http(served: str, vps_sim: VpsSimulator) -> None:
    assert served.startswith("http://127.0.0.1:") and served.endswith("/api/v1/")
    with httpx.Client(base_url=served, headers=AUTH) as http:
        assert http.get("snapshots/", params={"server_id": 12345}).json()["count"] == 2
        created = http.post("snapshots/", json={"server_id": 12347, "name": "over-http"})
        assert created.status_code == 201
        assert http.delete(f"snapshots/{created.json()['id']}/").status_code == 204
        assert http.get("servers/", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert [r.status for r in vps_sim.requests] == [200, 201, 204, 401]


def test_pagination_next_link_points_back_at_the_served_address(vps_sim: VpsSimulator) -> None:
    sim = VpsSimulator(page_size=3)
    base_url, stop = start_in_thread(sim)
    try:
        with httpx.Client(headers=AUTH) as http:
            first = http.get(base_url + "snapshots/").json()
            assert first["next"].startswith(base_url + "snapshots/?")
            second = http.get(first["next"])
            assert second.status_code == 200
    finally:
        stop()


def test_drop_over_http_closes_the_socket_without_an_answer(served: str, vps_sim: VpsSimulator) -> None:
    vps_sim.faults.drop_next(after_apply=True)
    with httpx.Client(base_url=served, headers=AUTH) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.delete("snapshots/801/")
        assert http.get("servers/").status_code == 200  # the server keeps serving
    assert 801 not in vps_sim.snapshot_ids()


def test_stop_releases_the_port(vps_sim: VpsSimulator) -> None:
    base_url, stop = start_in_thread(vps_sim)
    port = httpx.URL(base_url).port
    stop()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
