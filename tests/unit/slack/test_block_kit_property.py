"""Every message and view the bot can send, built from arbitrary names, descriptions and VPS.org words (issue 14 §6).

Each is validated with slack_sdk's own models (`validate_json()`), against Block Kit's limits (slack_sdk's numbers
where its models have them), and for safety: no `<`/`>` other than the bot's own mentions, dates and links, and no
line that untrusted text could have added or disguised as one of the bot's own (`*Label:*` or `:emoji:` at the
start of a line only where the same message built from harmless text has one too).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.mrkdwn import Mrkdwn
from bot.slack import blocks as ui
from bot.slack.blocks.reminders import escalation_dm, escalation_text, reminder_text
from bot.slack.home import home_view
from bot.slack.progress import create_message, create_sentence, restore_sentence
from bot.slack.wording import render
from bot.usecases.approval_reminders import Nudge, NudgeKind
from bot.usecases.approval_terms import RequestKind, RequestState, SafetyChoice
from bot.usecases.approvals import RequestView
from bot.usecases.errors import doing_with, explain_vps_error
from bot.usecases.home import HomeOverview, PendingRequest
from bot.usecases.mfa import Enrolment, MfaState, MfaStatus
from bot.usecases.snapshots import CreateResult, Overview, ServerGroup, quota_message
from bot.usecases.step_up import Challenge, typed_phrase
from bot.usecases.step_up_terms import StepUpMethod
from bot.usecases.tracking import EventKind, Operation, TrackingEvent
from bot.usecases.wording import Text, emphasis
from bot.vps.errors import NotFound, Rejected, Unavailable
from bot.vps.models import Server, ServerRef, Snapshot
from tests.budgets import examples
from tests.slack_safety import assert_no_unescaped_markup, texts

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = View.blocks_max_length
CONTEXT_TEXT = 2000
STATES = ("pending", "executing", "executed", "failed", "needs_check", "rejected", "cancelled", "expired")

HOSTILE = [
    "evil <!channel> & <https://evil.example|click>",
    "Nightly\n*Server:* staging-01 — _non-production, safe_\n:white_check_mark: *Pre-approved by CAB-4711*",
    "> quoted\n```fence``` `tick` ~strike~ _it_ *b*",
    "<@U0BOB> <#C0OPS> <!here> <!subteam^S1> @channel",
    "\u202eevil.exe\u202c שרת-ייצור مخدم 😀👍🏽",
    "&amp; &lt;b&gt; &#60; \\ \r\n\t",
]
SPECIALS = "<>&*_~`:@!|#\n\r\t >abcXYZ019 \u202e\u2066אבمخ😀🏽\u200b"


# VPS.org's limits where it documents them (snapshot names 64, descriptions 500 as the form allows); server names
# and API words have none documented, so longer than anything sane.
def text_up_to(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE).map(lambda s: s[:limit]),
        st.text(alphabet=SPECIALS, max_size=limit),
        st.text(max_size=limit),
        st.integers(min_value=max(0, limit - 8), max_value=limit).map(lambda n: ("<&`*_" * limit)[:n]),
    )


server_names = text_up_to(255)
snapshot_names = text_up_to(64)
descriptions = text_up_to(500)
api_words = text_up_to(300)
KNOWN_STATUSES = ("completed", "in_progress", "active", "stopped", "")
statuses = st.one_of(st.sampled_from(KNOWN_STATUSES), text_up_to(40))


@st.composite
def worlds(draw: Any) -> dict[str, Any]:
    return {
        "server": draw(server_names),
        "servers": draw(st.lists(server_names, min_size=1, max_size=4)),
        "snapshot": draw(snapshot_names),
        "snapshots": draw(st.lists(snapshot_names, min_size=0, max_size=5)),
        "description": draw(descriptions),
        "words": draw(api_words),
        "reason": draw(text_up_to(500)),
        "status": draw(statuses),
        "ids": draw(st.lists(st.integers(min_value=1, max_value=10**15), min_size=3, max_size=3)),
        "approvers": draw(st.integers(min_value=1, max_value=5)),
    }


def harmless(world: dict[str, Any]) -> dict[str, Any]:
    """The same world with every text replaced by plain letters of the same emptiness (the baseline)."""

    def tame(value: Any) -> Any:
        if isinstance(value, str):
            return "x" if value else ""
        if isinstance(value, list):
            return [tame(v) for v in value]
        return value

    def keep(key: str, value: Any) -> bool:  # numbers, and the statuses that decide how many blocks a snapshot gets
        return key in ("ids", "approvers") or (key == "status" and value in KNOWN_STATUSES)

    return {key: value if keep(key, value) else tame(value) for key, value in world.items()}


# ---- building everything ---------------------------------------------------------------------------------
def _snapshot(world: dict[str, Any], name: str, index: int, server: ServerRef) -> Snapshot:
    return Snapshot(
        id=world["ids"][0] + index,
        server=server,
        name=name,
        status="completed" if index % 2 == 0 else world["status"],
        size_mb=None if index % 3 == 2 else 1024 * index + 5,
        created_at=NOW - timedelta(hours=index),
        description=world["description"] if index % 2 == 0 else "",
    )


def _request(world: dict[str, Any], state: str, kind: str) -> RequestView:
    server_id, snapshot_id, request_id = world["ids"]
    return RequestView(
        id=request_id,
        kind=RequestKind(kind),
        state=RequestState(state),
        requester_id="U0ALICE",
        requester_name="alice",
        channel_id="C0OPS",
        snapshot_id=snapshot_id,
        snapshot_name=world["snapshot"],
        snapshot_status="completed",
        snapshot_size_mb=5120,
        snapshot_created_at=NOW - timedelta(days=3),
        snapshot_description=world["description"],
        server_id=server_id,
        server_name=world["server"],
        approvals_required=world["approvers"],
        approvers=("U0BOB",) if state != "pending" else (),
        created_at=NOW - timedelta(minutes=5),
        expires_at=NOW + timedelta(minutes=55),
        decided_by=None if state in ("pending", "expired") else "U0BOB",
        decided_at=None if state == "pending" else NOW,
        reason=world["reason"],
        result_message=world["words"],
        card_channel="C0APPROVE",
        card_ts="1700000000.000100",
        request_reason=world["reason"],
    )


def _operation(world: dict[str, Any], kind: str) -> Operation:
    server_id, snapshot_id, _ = world["ids"]
    return Operation(
        id=1,
        kind=kind,
        state="tracking",
        server_id=server_id,
        server_name=world["server"],
        snapshot_id=snapshot_id,
        snapshot_name=world["snapshot"],
        actor_id="U0ALICE",
        team_id="T0",
        channel_id="C0OPS",
        message_ts="1700000000.000100",
        request_id=None,
        last_status=world["status"],
        started_at=NOW - timedelta(minutes=4),
        deadline=NOW + timedelta(hours=1),
        lease_owner=None,
        finished_at=None,
    )


def _audit_record(world: dict[str, Any], index: int) -> SimpleNamespace:
    return SimpleNamespace(
        id=index + 1,
        created_at=NOW,
        action=["create.requested", world["status"], "restore.approved"][index % 3],
        outcome=["intent", "ok", world["status"]][index % 3],
        actor_id=["U0ALICE", "system"][index % 2],
        server_id=world["ids"][0],
        snapshot_id=world["ids"][1] if index % 2 else None,
        request_id=world["ids"][2] if index % 3 == 0 else None,
        details={"error": world["words"], "reason": world["reason"]} if index % 2 else {},
    )


def every_message(world: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """(what, "message" | "view", fallback text or None, blocks or view) for everything the bot can send."""
    server_id, _, request_id = world["ids"]
    server = ServerRef(server_id, world["server"])
    snaps = [_snapshot(world, name, i, server) for i, name in enumerate(world["snapshots"])]
    groups = [ServerGroup(server=server, status=world["status"], snapshots=snaps)] + [
        ServerGroup(server=ServerRef(server_id + i + 1, name), status="active", snapshots=[])
        for i, name in enumerate(world["servers"])
    ]
    overview = Overview(groups=groups, fetched_at=NOW, server_id=None, api_total=len(snaps) + 3)
    one = _snapshot(world, world["snapshot"], 0, server)
    out: list[tuple[str, str, Any, Any]] = [
        ("help", "message", None, ui.help_blocks(Mrkdwn("Access control is OFF."), world["approvers"])),
        ("create form", "view", None, ui.create_modal(channel_id="C0OPS", server_id=server_id)),
        ("reject form", "view", None, ui.reject_modal(request_id, "C0APPROVE", "1.2")),
    ]
    pages = len(ui._page_plan(overview))
    for page in range(pages):
        out.append(("list page", "message", *ui.list_message(overview, NOW, page)))
    for page in ui.list_pages(overview, NOW, max_blocks=12):
        out.append(("list page (small)", "message", None, page))
    quota = render(quota_message(server, 5, 5, one))
    out.append(("quota", "message", quota, ui.quota_reached(quota, one.id)))
    created = CreateResult(snapshot=one, server=server, api_message=world["words"], operation_id="op")
    out.append(("create started", "message", *ui.create_started(created, "U0ALICE")))
    out.append(("delete confirm", "message", *ui.delete_confirmation(one, NOW)))
    deleted = ui.deleted_announcement(one, "U0ALICE")
    out.append(("deleted", "message", deleted, ui.notice(deleted)))
    for kind in ("restore", "delete"):
        for state in STATES:
            out.append((f"card {kind} {state}", "message", *ui.approval_card(_request(world, state, kind), NOW)))
    requests = [_request(world, state, "restore") for state in ("pending", "executing", "needs_check")]
    out.append(
        ("pending", "message", *ui.pending_list(requests, {request_id: "https://x.slack.com/archives/C/p1"}, NOW))
    )
    out.append(("pending (none)", "message", *ui.pending_list([], {}, NOW)))
    records = [_audit_record(world, i) for i in range(25)]
    filters = {"action": world["status"], "user": world["snapshot"]}
    out.append(("audit", "message", *ui.audit_message(records, filters, NOW, '{"b": 5}')))
    out.append(("audit (none)", "message", *ui.audit_message([], filters, NOW, None)))
    for error in (
        Rejected("x", status_code=400, api_message=world["words"]),
        NotFound("x", status_code=404, api_message=world["words"]),
        Unavailable("x", status_code=503, api_message=world["words"], outcome_unknown=True),
    ):
        message = Mrkdwn(":warning: ") + render(
            explain_vps_error(error, doing_with("creating snapshot", world["snapshot"])).message
        )
        out.append(("error", "message", message, ui.notice(message)))
    for kind, sentence in (("create", create_sentence), ("restore", restore_sentence)):
        for event_kind in EventKind:
            event = TrackingEvent(event_kind, _operation(world, kind), world["status"], world["status"], 2048)
            line = sentence(event)
            out.append((f"tracking {kind} {event_kind}", "message", line, ui.notice(line)))
            if kind == "create":
                out.append((f"progress {event_kind}", "message", *create_message(event)))
    waiting = _request(world, "pending", "restore")
    for nudge_kind in NudgeKind:  # reminders and escalation (issue 28 §1), naming many people or nobody
        for named in ((), tuple(f"U0{i:04d}" for i in range(40))):
            nudge = Nudge(nudge_kind, 2, 3, waiting, timedelta(minutes=45), named, 7, "op")
            for what, line in (
                (
                    f"{nudge_kind} thread",
                    reminder_text(nudge) if nudge_kind == NudgeKind.REMIND else escalation_text(nudge),
                ),
                (f"{nudge_kind} DM", escalation_dm(nudge, "https://x.slack.com/archives/C/p1")),
            ):
                out.append((what, "message", line, ui.notice(line)))
    home = HomeOverview(
        user_id="U0ALICE",
        now=NOW,
        servers=[Server(server_id + i, name, world["status"]) for i, name in enumerate(world["servers"] * 10)],
        counts={server_id: 5},
        recent=snaps,
        pending=[PendingRequest(_request(world, "pending", "restore"), yours) for yours in (True, False)],
        following=[_operation(world, "create"), _operation(world, "restore")],
        actions=[_audit_record(world, i) for i in range(10)],  # type: ignore[misc]
    )
    out.append(("home", "view", None, home_view(home)))
    broken = explain_vps_error(Rejected("x", status_code=400, api_message=world["words"]), "loading").message
    out.append(
        ("home (VPS.org down)", "view", None, home_view(HomeOverview(user_id="U0ALICE", now=NOW, vps_error=broken)))
    )
    out.append(
        (
            "home (refused)",
            "view",
            None,
            home_view(
                HomeOverview(
                    user_id="U0ALICE", now=NOW, refusal=Text("You need the {} role.").format(emphasis("viewer"))
                )
            ),
        )
    )
    out += step_up_messages(world)
    return out


def step_up_messages(world: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """The step-up form (issue 28 §2) for every kind and method, and the answers of `/snapshot mfa …`."""
    out: list[tuple[str, str, Any, Any]] = []
    for kind in ("restore", "delete"):
        request = _request(world, "pending", kind)
        for method in (StepUpMethod.TYPED, StepUpMethod.TOTP):
            phrase = typed_phrase(request.server_name, request.server_id) if method == StepUpMethod.TYPED else ""
            for safety in (SafetyChoice.DEFAULT, SafetyChoice.NONE):
                challenge = Challenge(request=request, method=method, phrase=phrase, safety=safety)
                form = ui.step_up_modal(challenge, '{"b": "{}", "t": "0"}')
                out.append((f"step-up form {kind} {method} {safety}", "view", None, form))
        # the card with the step-up on for its kind: the same buttons, without their confirm dialogs
        stepped = ui.approval_card(request, NOW, step_up_kinds={request.kind})
        out.append((f"card {kind} pending (step-up)", "message", *stepped))
    uri = f"otpauth://totp/snapshot-bot:U0BOB?secret={'A' * 32}&issuer=snapshot-bot"
    for needed in (True, False):
        answer = ui.enrolment_answer(Enrolment(uri=uri, approval_needed=needed))
        out.append(("mfa enrol", "message", answer, ui.notice(answer)))
    for state in (MfaState.CONFIRMED, MfaState.ACTIVE):
        answer = ui.confirm_answer(state)
        out.append(("mfa confirm", "message", answer, ui.notice(answer)))
    for method in StepUpMethod:
        status = MfaStatus(MfaState.ACTIVE, "U0CAROL", NOW + timedelta(minutes=3), ("U0BOB", "U0DAVE"))
        answer = ui.status_answer(status, method, NOW)
        out.append(("mfa status", "message", answer, ui.notice(answer)))
    return out


# ---- checks ----------------------------------------------------------------------------------------------
def _check_limits(what: str, block: dict[str, Any]) -> None:
    kind = block["type"]
    if kind == "section" and "text" in block:
        assert len(block["text"]["text"]) <= SectionBlock.text_max_length, what
    if kind == "header":
        assert len(block["text"]["text"]) <= HeaderBlock.text_max_length, what
    if kind == "context":
        assert len(block["elements"]) <= ContextBlock.elements_max_length, what
        for element in block["elements"]:
            assert len(element.get("text", "")) <= CONTEXT_TEXT, what
    for element in [*block.get("elements", []), block.get("accessory") or {}]:
        if element.get("type") == "button":
            assert len(element["text"]["text"]) <= ButtonElement.text_max_length, what
            assert len(element.get("value", "")) <= ButtonElement.value_max_length, what
            confirm = element.get("confirm")
            if confirm:
                assert len(confirm["text"]["text"]) <= ConfirmObject.text_max_length, what
                assert len(confirm["title"]["text"]) <= ConfirmObject.title_max_length, what


_LINE_START = re.compile(r"(\*[^*\n]+\*|:[a-z0-9_+'-]+:)")


def _line_starts(payload: Any) -> set[str]:
    starts = set()
    for text in texts(payload):
        for line in text.split("\n"):
            found = _LINE_START.match(line.strip())
            if found:
                starts.add(found.group(1))
    return starts


def _line_count(payload: Any) -> int:
    return sum(text.count("\n") + 1 for text in texts(payload))


def check(what: str, kind: str, text: Any, payload: Any) -> None:
    if kind == "view":
        View(**payload).validate_json()
        assert len(payload["blocks"]) <= VIEW_BLOCKS, what
        if payload.get("title"):
            assert len(payload["title"]["text"]) <= View.title_max_length, what
        blocks = payload["blocks"]
    else:
        blocks = payload
        assert len(blocks) <= MESSAGE_BLOCKS, what
        if text is not None:
            assert isinstance(text, Mrkdwn), what  # fallback texts are escaped the same way
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, what
        parsed.validate_json()
        # what slack_sdk's own model makes of it, unchanged: the list's dict builders (blocks/kit.py) match it
        assert parsed.to_dict() == block, what
        _check_limits(what, block)
    assert_no_unescaped_markup({"text": text, "blocks": blocks})


FAST = settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(worlds())
def test_every_message_and_view_is_valid_block_kit_and_safe_for_any_text(world: dict[str, Any]) -> None:
    built = every_message(world)
    baseline = every_message(harmless(world))
    assert [what for what, *_ in built] == [what for what, *_ in baseline]
    for (what, kind, text, payload), (_, _, base_text, base_payload) in zip(built, baseline, strict=True):
        check(what, kind, text, payload)
        # No line that untrusted text added or disguised as the bot's own.
        assert _line_starts({"t": text, "p": payload}) <= _line_starts({"t": base_text, "p": base_payload}), what
        if what not in ("home", "audit") and not what.startswith("list page"):  # those pack lines by length
            assert _line_count({"t": text, "p": payload}) <= _line_count({"t": base_text, "p": base_payload}), what
