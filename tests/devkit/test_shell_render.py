"""The shell's renderer: Block Kit and mrkdwn as terminal text, numbered buttons, confirm prompts, forms."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.slack import blocks as ui
from bot.slack.listeners.forms import view_value
from bot.vps.models import ServerRef, Snapshot
from devkit.shell.render import (
    Names,
    Style,
    confirm_question,
    is_yes,
    mrkdwn,
    parse_modal,
    render_blocks,
)

PLAIN = Style(color=False)
COLOR = Style(color=True)
NAMES = Names(users={"U0ALICE": "alice", "U0BOB": "bob"}, channels={"C0OPS": "ops"})
NOW = datetime(2025, 1, 20, 12, 0, tzinfo=UTC)
SNAP = Snapshot(
    id=798,
    server=ServerRef(12345, "web-server-01"),
    name="weekly_snapshot",
    status="completed",
    size_mb=4856,
    created_at=datetime(2025, 1, 8, 12, 0, tzinfo=UTC),
    description="Weekly <b> & more",
)


def test_emphasis_becomes_ansi_on_a_terminal_and_disappears_without_colour() -> None:
    text = "*bold* and _italic_ and ~gone~ and `code`"
    assert mrkdwn(text, PLAIN) == "bold and italic and gone and code"
    coloured = mrkdwn(text, COLOR)
    assert "\x1b[1mbold\x1b[22m" in coloured
    assert "\x1b[3mitalic\x1b[23m" in coloured
    assert "\x1b[9mgone\x1b[29m" in coloured
    assert "\x1b[36mcode\x1b[39m" in coloured


def test_markers_inside_words_and_code_are_left_alone() -> None:
    assert mrkdwn("snake_case_name and 2 * 3 * 4", PLAIN) == "snake_case_name and 2 * 3 * 4"
    assert mrkdwn("`*not bold* _nor italic_`", PLAIN) == "*not bold* _nor italic_"
    assert mrkdwn("```\nline one\n*two*\n```", PLAIN) == "line one\n*two*"


def test_mentions_channels_dates_links_and_entities() -> None:
    assert mrkdwn("<@U0ALICE> asked <@U0BOB>", PLAIN, NAMES) == "@alice asked @bob"
    assert mrkdwn("<@U0NOBODY>", PLAIN, NAMES) == "@U0NOBODY"
    assert mrkdwn("in <#C0OPS> and <#C0OTHER|general>", PLAIN, NAMES) == "in #ops and #general"
    when = "<!date^1736965800^{date_short_pretty} {time}|2025-01-15 18:30 UTC>"
    assert mrkdwn(f"Asked {when}", PLAIN) == "Asked 2025-01-15 18:30 UTC"
    assert mrkdwn("<!here> look", PLAIN) == "@here look"
    assert mrkdwn("<https://example.org/x|the docs>", PLAIN) == "the docs (https://example.org/x)"
    # Escaped user text shows as the characters typed, and is not mistaken for a control sequence.
    assert mrkdwn("a &lt;!channel&gt; &amp; b", PLAIN) == "a <!channel> & b"
    assert mrkdwn("`&lt;tag&gt;`", PLAIN) == "<tag>"


def test_emoji_names_become_emoji_unless_turned_off() -> None:
    assert mrkdwn(":white_check_mark: done :made_up_emoji:", PLAIN) == "✅ done :made_up_emoji:"
    assert mrkdwn(":white_check_mark: done", Style(emoji=False)) == ":white_check_mark: done"


def test_sections_fields_context_dividers_and_headers() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Restore request #4"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Server:* web-server-01"},
            "fields": [{"type": "mrkdwn", "text": "*Size:* 5 GB"}, {"type": "plain_text", "text": "a *b*"}],
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "by <@U0ALICE>"}, {"type": "mrkdwn", "text": "x"}],
        },
    ]
    rendered = render_blocks(blocks, style=PLAIN, names=NAMES)
    assert rendered.lines == [
        "RESTORE REQUEST #4",
        "Server: web-server-01",
        "  Size: 5 GB",
        "  a *b*",  # plain_text is shown exactly as written
        "─" * 40,
        "by @alice · x",
    ]
    assert rendered.buttons == []


def test_text_only_message_uses_its_text() -> None:
    rendered = render_blocks([], fallback_text="*Hello* <@U0BOB>", style=PLAIN, names=NAMES)
    assert rendered.lines == ["Hello @bob"]


def test_every_button_is_numbered_in_order_accessories_included() -> None:
    blocks = [
        {
            "type": "section",
            "block_id": "srv",
            "text": {"type": "mrkdwn", "text": "*web-server-01*"},
            "accessory": {
                "type": "button",
                "text": {"type": "plain_text", "text": "Create snapshot"},
                "action_id": "snapshot_create_open",
                "value": "12345",
            },
        },
        *ui.delete_confirmation(SNAP, NOW)[1],
    ]
    rendered = render_blocks(blocks, style=PLAIN, names=NAMES, first_number=4)
    assert rendered.lines[0] == "web-server-01  [4] Create snapshot"
    assert "[5] Delete  [6] Cancel" in rendered.lines
    assert [(b.number, b.label, b.action_id, b.value) for b in rendered.buttons] == [
        (4, "Create snapshot", "snapshot_create_open", "12345"),
        (5, "Delete", "snapshot_delete_confirm", "798"),
        (6, "Cancel", "dismiss", "delete"),
    ]
    delete = rendered.buttons[1]
    assert delete.style == "danger" and delete.confirm is not None
    assert rendered.buttons[0].block_id == "srv"
    # The snapshot's description is user text: escaped by the bot, shown as typed here.
    assert any("“Weekly <b> & more”" in line for line in rendered.lines)
    assert any("weekly_snapshot (#798) of web-server-01?" in line for line in rendered.lines)


def test_button_colours_follow_their_style() -> None:
    blocks = ui.delete_confirmation(SNAP, NOW)[1]
    lines = render_blocks(blocks, style=COLOR).lines
    line = next(line for line in lines if "Delete" in line and "[1]" in line)
    assert "\x1b[31m[1] Delete\x1b[39m" in line


def test_confirm_dialog_becomes_a_yes_no_question_defaulting_to_no() -> None:
    button = render_blocks(ui.delete_confirmation(SNAP, NOW)[1]).buttons[0]
    assert button.confirm is not None
    question = confirm_question(button.confirm, PLAIN, NAMES)
    assert question == (
        "Delete this snapshot? — weekly_snapshot (#798) on web-server-01 will be deleted permanently. [y/N] "
    )
    assert is_yes("y") and is_yes(" YES\n")
    assert not is_yes("") and not is_yes("n") and not is_yes(None) and not is_yes("yep")


def test_approval_card_renders_with_its_three_buttons() -> None:
    from bot.usecases.approval_base import RequestView
    from bot.usecases.approval_terms import RequestKind, RequestState

    request = RequestView(
        id=7,
        kind=RequestKind.RESTORE,
        state=RequestState.PENDING,
        requester_id="U0ALICE",
        requester_name="alice",
        channel_id="C0OPS",
        snapshot_id=801,
        snapshot_name="pre-migration",
        snapshot_status="completed",
        snapshot_size_mb=5120,
        snapshot_created_at=datetime(2025, 1, 15, tzinfo=UTC),
        snapshot_description="",
        server_id=12345,
        server_name="web-server-01",
        approvals_required=1,
        approvers=(),
        created_at=NOW,
        expires_at=NOW,
        decided_by=None,
        decided_at=None,
        reason="",
        result_message="",
        card_channel=None,
        card_ts=None,
    )
    rendered = render_blocks(ui.approval_card(request, NOW)[1], style=PLAIN, names=NAMES)
    text = "\n".join(rendered.lines)
    assert "RESTORE REQUEST #7" in text and "Asked by: @alice 2025-01-20 12:00 UTC" in text
    assert "🚨 This overwrites ALL current data on the server." in text
    assert [b.label for b in rendered.buttons] == ["Approve", "Reject", "Cancel (requester)"]
    assert "[1] Approve  [2] Reject  [3] Cancel (requester)" in rendered.lines


def test_create_modal_becomes_prompts_whose_answers_the_listener_can_read() -> None:
    form = parse_modal(ui.create_modal(channel_id="C0OPS", server_id=12345), PLAIN, NAMES)
    assert (form.title, form.submit, form.callback_id) == ("Create snapshot", "Create", "create_snapshot")
    assert [(f.block_id, f.label, f.optional, f.initial) for f in form.fields] == [
        ("server", "Server", False, "12345"),
        ("name", "Snapshot name", False, ""),
        ("description", "Description", True, ""),
    ]
    assert any("stop the server first" in note for note in form.notes)
    server, name, description = form.fields
    assert server.prompt(PLAIN) == "Server [12345]: "
    assert server.kind == "external_select"  # its options come from the bot (block_suggestion)
    assert name.prompt(PLAIN) == "Snapshot name (e.g. before-update): "  # an example, not kept by Enter
    assert description.prompt(PLAIN) == "Description (optional): "
    assert "hyphens" in name.hint

    # Unanswered fields keep their initial value; blanks are sent as Slack sends them (None).
    view = {"state": {"values": form.values({"name": "before-update"})}}
    assert view_value(view, "server") == "12345"
    assert view_value(view, "name") == "before-update"
    assert view_value(view, "description") == ""
    assert form.values({})["description"] == {"value": {"type": "plain_text_input", "value": None}}


def test_select_fields_take_a_number_or_a_value() -> None:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Pick"},
        "blocks": [
            {
                "type": "input",
                "block_id": "size",
                "label": {"type": "plain_text", "text": "Size"},
                "element": {
                    "type": "static_select",
                    "action_id": "choice",
                    "options": [
                        {"text": {"type": "plain_text", "text": "Small"}, "value": "s"},
                        {"text": {"type": "plain_text", "text": "Large"}, "value": "l"},
                    ],
                },
            }
        ],
    }
    field = parse_modal(view).fields[0]
    assert field.options == (("Small", "s"), ("Large", "l"))
    assert field.state("2")["selected_option"]["value"] == "l"
    assert field.state("s")["selected_option"]["value"] == "s"
    assert field.state("huge") == {"type": "static_select", "selected_option": None}
