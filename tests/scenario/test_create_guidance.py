"""Creating a snapshot as the VPS.org docs advise (issue 17 §3, §5), through signed requests.

A full server is said before the form (with the oldest offered for deletion through the normal delete path);
the form offers the servers from `GET /servers/` as an external select fed by `block_suggestion`; a running
server's create answer carries VPS.org's warning; a typed create says what it took as name and description.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.app_fixtures import ALICE, APPROVALS, BOB, OPS, Harness


def buttons(blocks: list[dict]) -> list[dict]:
    return [el for b in blocks for el in b.get("elements", []) if el.get("type") == "button"]


def test_create_button_on_a_full_server_says_so_before_the_form(harness: Harness) -> None:
    harness.driver.block_action("snapshot_create_open", "12348", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert harness.slack.calls_to("views.open") == []  # no form to fill in vain
    message = harness.last_ephemeral()
    assert "`staging-01` already has 5 of 5 snapshots" in message.visible_text
    assert "the oldest is `staging-build-1` (#810)" in message.visible_text
    offer = [b for b in buttons(message.blocks) if b["action_id"] == "snapshot_delete"]
    assert [b["value"] for b in offer] == ["810"]
    assert harness.mutating_calls() == []

    # The offer goes through the normal delete path: its confirmation, then the DELETE.
    harness.driver.block_action("snapshot_delete", "810", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert "Delete snapshot `staging-build-1` (#810)" in harness.last_ephemeral().visible_text
    harness.driver.block_action("snapshot_delete_confirm", "810", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert [c.path for c in harness.api_calls("DELETE")] == ["/api/v1/snapshots/810/"]

    # Room again: the same button now opens the form.
    harness.driver.block_action("snapshot_create_open", "12348", user_id=ALICE, channel_id=OPS)
    harness.settle()
    assert len(harness.slack.wait_for("views.open")) == 1


def test_the_offered_delete_asks_for_approval_when_deletes_need_one(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(APPROVAL_REQUIRED_FOR="restore,delete", SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.driver.block_action("snapshot_create_open", "12348", user_id=ALICE, channel_id=OPS)
    h.settle()
    h.driver.block_action("snapshot_delete", "810", user_id=ALICE, channel_id=OPS)
    h.settle()
    h.driver.block_action("snapshot_delete_confirm", "810", user_id=ALICE, channel_id=OPS)
    h.settle()
    assert h.api_calls("DELETE") == []
    card = h.card()
    assert "Delete request #1" in card.visible_text and "staging-build-1" in card.visible_text
    h.click(card, "Approve", user=BOB)
    h.settle()
    assert [c.path for c in h.api_calls("DELETE")] == ["/api/v1/snapshots/810/"]


def test_a_slow_vps_org_does_not_keep_the_form_from_opening(harness: Harness) -> None:
    harness.sim.faults.latency = 2.0  # longer than the pre-form look-up may take (trigger_id lives 3 s)
    harness.driver.block_action("snapshot_create_open", "12348", user_id=ALICE, channel_id=OPS)
    harness.settle()
    harness.sim.faults.latency = 0
    assert len(harness.slack.wait_for("views.open")) == 1  # the submission checks the quota again


def opened_form(h: Harness) -> dict:
    assert h.command("create").status == 200
    return h.slack.wait_for("views.open")[-1].args["view"]


def suggest(h: Harness, view: dict, typed: str, user: str = ALICE) -> dict:
    response = h.driver.block_suggestion("create_server", typed, user_id=user, block_id="server", view=view)
    assert response.status == 200, response.body
    return response.json()


def labels(answer: dict) -> list[str]:
    return [o["text"]["text"] for o in answer.get("options", [])]


def test_the_form_offers_the_servers_from_vps_org_filtered_by_what_is_typed(harness: Harness) -> None:
    view = opened_form(harness)
    server = next(b for b in view["blocks"] if b.get("block_id") == "server")
    assert server["element"]["type"] == "external_select" and server["element"]["action_id"] == "create_server"
    assert server["element"]["min_query_length"] == 0

    assert labels(suggest(harness, view, "")) == [
        "cache-01 (id 12347) · active",
        "db-server-01 (id 12346) · active",
        "legacy-01 (id 12349) · suspended",
        "staging-01 (id 12348) · stopped",
        "web-server-01 (id 12345) · active",
    ]
    assert labels(suggest(harness, view, "  DB ")) == ["db-server-01 (id 12346) · active"]
    assert [o["value"] for o in suggest(harness, view, "12345")["options"]] == ["12345"]
    assert labels(suggest(harness, view, "424242")) == ["Server id 424242 as typed (not in VPS.org's list)"]
    assert labels(suggest(harness, view, "nothing-like-this")) == []
    # Typing does not call VPS.org on every keystroke: the list is remembered for a short while.
    assert len(harness.api_calls("GET", "/api/v1/servers/")) == 1

    chosen = harness.driver.view_submission(
        "create_snapshot",
        {
            "server": {"create_server": {"type": "external_select", "selected_option": {"value": "12346"}}},
            "name": {"value": {"type": "plain_text_input", "value": "picked"}},
            "description": {"value": {"type": "plain_text_input", "value": None}},
        },
        user_id=ALICE,
        private_metadata=view["private_metadata"],
    )
    assert chosen.status == 200 and not chosen.body
    harness.settle()
    assert [c.json for c in harness.api_calls("POST", "/api/v1/snapshots/")] == [{"server_id": 12346, "name": "picked"}]


def test_a_form_submitted_without_a_server_says_so_in_the_field(harness: Harness) -> None:
    view = opened_form(harness)
    empty = harness.driver.view_submission(
        "create_snapshot",
        {
            "server": {"create_server": {"type": "external_select", "selected_option": None}},
            "name": {"value": {"type": "plain_text_input", "value": "picked"}},
        },
        user_id=ALICE,
        private_metadata=view["private_metadata"],
    )
    assert empty.json()["response_action"] == "errors" and "server" in empty.json()["errors"]
    assert harness.mutating_calls() == []


def test_a_large_account_gets_at_most_100_options_within_block_kit_limits(harness: Harness) -> None:
    hostile = "<!channel> *bold* `tick`\nnew-line " + "x" * 200
    for n in range(150):
        harness.sim.add_server(20000 + n, f"{hostile}-{n}", status="active")
    view = opened_form(harness)
    answer = suggest(harness, view, "")
    (group,) = answer["option_groups"]
    assert group["label"]["text"] == "100 of 155 servers: type to narrow"
    options = group["options"]
    assert len(options) == 100
    for option in options:
        assert len(option["text"]["text"]) <= 75 and len(option["value"]) <= 150
        assert "\n" not in option["text"]["text"]
        assert option["text"]["text"].endswith(" · active") or "(id 1234" in option["text"]["text"]
    assert any(o["text"]["text"].endswith(f"(id {20000 + 5}) · active") for o in options)
    # Typing narrows it back under the limit, no group needed.
    (narrowed,) = labels(suggest(harness, view, "20149"))
    assert narrowed.startswith("<!channel> *bold* `tick` new-line xxx")  # plain_text: shown as typed, on one line
    assert narrowed.endswith("… (id 20149) · active") and len(narrowed) == 75  # the id and status always show


def test_when_vps_org_does_not_answer_a_typed_id_is_still_offered(harness: Harness) -> None:
    view = opened_form(harness)
    harness.sim.faults.fail_next(503, times=20, methods={"GET"})
    answer = suggest(harness, view, "12345")
    assert labels(answer) == ["Server id 12345 as typed (VPS.org did not answer)"]
    harness.sim.faults.clear()


def test_someone_who_may_not_create_gets_no_servers_and_it_is_audited(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_VIEWERS=BOB, SNAPSHOT_OPERATORS=ALICE)
    view = opened_form(h)
    assert suggest(h, view, "", user=BOB) == {"options": []}
    assert h.api_calls("GET", "/api/v1/servers/") == []
    assert [r.actor_id for r in h.audit(action="refused.permission")] == [BOB]


def test_typed_create_says_what_it_took_as_name_and_description_and_warns_for_a_running_server(
    harness: Harness,
) -> None:
    harness.run("create 12345 a b!")
    assert [c.json for c in harness.api_calls("POST", "/api/v1/snapshots/")] == [
        {"server_id": 12345, "name": "a", "description": "b!"}
    ]
    announcement = harness.channel(OPS)[-1].visible_text
    assert "*Name:* `a` · *Description:* “b!”" in announcement
    assert "`web-server-01` is *running*. VPS.org warns that a snapshot of a running server may leave " in announcement
    assert "filesystem inconsistencies" in announcement

    harness.sim.set_server_status(12347, "stopped")
    harness.run("create 12347 quiet")
    stopped = harness.channel(OPS)[-1].visible_text
    assert "*Name:* `quiet` · *Description:* none" in stopped
    assert "running" not in stopped
