"""The list page's dict builders (bot/slack/blocks/kit.py) make what slack_sdk's models make, and refuse what
Block Kit would (issue 27 §6: the list is rendered without slack_sdk's objects to spare the acks' CPU)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    SectionBlock,
)

from bot.mrkdwn import Mrkdwn, plain
from bot.slack import blocks as ui
from bot.slack.blocks import kit
from bot.slack.blocks.common import MAX_TEXT, context_md, md
from bot.usecases.snapshots import Overview, ServerGroup
from bot.vps.models import ServerRef, Snapshot

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
HOSTILE = "evil <!channel> & `tick` *b*\n> q " + "x" * 4000


def test_each_builder_makes_what_the_slack_sdk_model_makes() -> None:
    long = plain(HOSTILE)
    button = ButtonElement(text="Create snapshot", action_id="a", value="12")
    danger = ButtonElement(text="Delete", action_id="d", value="7", style="danger")
    pairs = [
        (kit.section(long), SectionBlock(text=md(long))),
        (
            kit.section(long, accessory=kit.button("Create snapshot", "a", "12")),
            SectionBlock(text=md(long), accessory=button),
        ),
        (kit.context(long), ContextBlock(elements=[context_md(long)])),
        (
            kit.actions(kit.button("Create snapshot", "a", "12"), kit.button("Delete", "d", "7", danger=True)),
            ActionsBlock(elements=[button, danger]),
        ),
        (kit.divider(), DividerBlock()),
    ]
    for built, model in pairs:
        assert built == model.to_dict()
    assert len(kit.section(long)["text"]["text"]) <= MAX_TEXT
    assert (
        kit.button("y" * 200, "a", "1")["text"]["text"]
        == ButtonElement(text="y" * 74 + "…", action_id="a").to_dict()["text"]["text"]
    )


def test_limits_slack_sdk_validates_are_refused_not_sent() -> None:
    with pytest.raises(ValueError, match="over Block Kit's limit"):
        kit.button("Show more", "list_more", "v" * (ButtonElement.value_max_length + 1))
    with pytest.raises(ValueError, match="1 to 25"):
        kit.actions()
    with pytest.raises(ValueError, match="1 to 10"):
        kit.context(*[Mrkdwn("x")] * 11)
    with pytest.raises(TypeError):
        kit.section("not escaped")  # type: ignore[arg-type]


def test_a_hostile_account_s_list_pages_round_trip_through_slack_sdk() -> None:
    def snap(i: int, server: ServerRef) -> Snapshot:
        status = ("completed", "in_progress", "<!here>")[i % 3]
        return Snapshot(
            i, server, HOSTILE[: 20 + i], status, 1024 * i, NOW - timedelta(hours=i), HOSTILE if i % 2 else ""
        )

    groups = []
    for s in range(30):
        server = ServerRef(s + 1, HOSTILE[: 10 + s])
        groups.append(ServerGroup(server, "<b>active", [snap(s * 5 + i, server) for i in range(s % 6)]))
    for overview in (
        Overview(groups=groups, fetched_at=NOW, session="s" * 40),
        Overview(groups=groups, fetched_at=NOW, api_total=999),
        Overview(groups=[], fetched_at=NOW),
    ):
        pages = len(ui._page_plan(overview))
        for page in range(pages):
            _, blocks = ui.list_message(overview, NOW, page)
            assert 0 < len(blocks) <= 50
            for block in blocks:
                parsed = Block.parse(block)
                assert parsed is not None
                assert parsed.to_dict() == block  # to_dict() validates: a limit broken would raise here
        assert pages > 1 or len(overview.groups) < 10
