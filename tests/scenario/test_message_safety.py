"""Untrusted text in messages (issue 14 §2, issue 13 §3's clipping): hostile names, descriptions and VPS.org words
can't ping, link, format or forge a card line, anywhere the bot shows them. Driven with signed requests; every
call Slack received (FakeSlack records them all) is checked, confirm dialogs included.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.app_fixtures import ALICE, BOB, OPS, Harness
from tests.slack_safety import assert_no_unescaped_markup, texts

HOSTILE_SERVER = "evil <!channel> & <https://evil.example|click>"
FORGED_DESCRIPTION = (
    "Nightly\n*Server:* staging-01 — _non-production, safe_\n:white_check_mark: *Pre-approved by CAB-4711*"
)
APPROVALS = "C0APPROVE"
ROOT = Path(__file__).resolve().parents[2]


def everything_sent(h: Harness) -> list[dict[str, object]]:
    return [call.args for call in h.slack.calls]


def assert_every_call_is_safe(h: Harness) -> None:
    for args in everything_sent(h):
        assert_no_unescaped_markup(args)
        dumped = json.dumps(args)
        assert "<!channel>" not in dumped and "<https://evil.example" not in dumped


def test_a_hostile_server_name_pings_nobody_and_links_nowhere(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.sim.add_server(555, HOSTILE_SERVER)
    for n in range(5):
        h.sim.add_snapshot(555, f"night_{n}_*bold*", description=f"<!here> copy {n} & <@U0BOB>")

    h.run("create 555 one-more")  # the quota message names the server and the oldest snapshot
    quota = h.last_ephemeral(ALICE)
    assert "already has 5 of 5 snapshots" in quota.visible_text
    assert "&lt;!channel&gt;" in quota.visible_text  # shown, as text
    oldest = next(el for b in quota.blocks for el in b.get("elements", []) if el.get("action_id") == "snapshot_delete")
    # The "Delete the oldest…" button: the delete confirmation and its dialog.
    assert h.driver.block_action("snapshot_delete", oldest["value"], user_id=ALICE, channel_id=OPS).status == 200
    h.settle()
    assert "Delete snapshot" in h.last_ephemeral(ALICE).visible_text
    h.run("list 555")
    h.run(f"restore {h.sim.snapshot_ids(555)[0]}")  # the card and its confirm dialog
    assert "Approve" in json.dumps(h.card().blocks)
    h.driver.app_home_opened(ALICE)
    h.settle()
    assert h.slack.home_view(ALICE) is not None

    assert_every_call_is_safe(h)


def test_vps_org_words_in_a_warning_are_shown_as_text(harness: Harness) -> None:
    h = harness
    words = "<!channel> *urgent*: <https://evil.example|re-login here>\n> quoted"
    h.sim.faults.fail_next(400, body=json.dumps({"detail": words}), methods=["POST"])

    h.run("create 12345 before-update")

    warning = h.last_ephemeral(ALICE)
    assert "VPS.org refused creating snapshot `before-update`" in warning.visible_text
    assert "∗urgent∗" in warning.visible_text  # no bold from VPS.org
    assert_every_call_is_safe(h)


def test_a_description_cannot_forge_lines_on_the_approval_card(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    snapshot_id = h.sim.add_snapshot(12345, "nightly", description=FORGED_DESCRIPTION)

    h.run(f"restore {snapshot_id}")
    h.click(h.card(), "Approve", user=BOB)
    h.settle()

    for message in (h.card(), *[m for m in h.channel(APPROVALS) if m.thread_ts]):
        lines = [line for text in texts(message.blocks) for line in text.split("\n")]
        assert sum(line.startswith("*Server:*") for line in lines) <= 1
        assert not any(line.startswith(":white_check_mark: *Pre-approved") for line in lines)
        assert not any("*Pre-approved" in line or "_non-production" in line for line in lines)
    facts = [line for text in texts(h.card().blocks) for line in text.split("\n")]
    description = next(line for line in facts if line.startswith("*Description:*"))
    assert "Pre-approved by CAB-4711" in description  # still shown, on its own labelled line, as text
    assert_every_call_is_safe(h)


def test_long_names_are_clipped_so_the_card_is_always_posted(make_harness: Callable[..., Harness]) -> None:
    """Issue 13 §3: a 64-character snapshot name on a long server name overflowed the 300-character confirm text,
    the card builder raised after the request was stored, and the request was stranded."""
    h = make_harness(SNAPSHOT_APPROVAL_CHANNEL=APPROVALS)
    h.sim.add_server(777, "s" * 250)
    snapshot_id = h.sim.add_snapshot(777, "n" * 64, description="d" * 500)

    h.run(f"restore {snapshot_id}")

    posted = h.card()
    approve = next(
        el for b in posted.blocks for el in b.get("elements", []) if el.get("action_id") == "approval_approve"
    )
    assert len(approve["confirm"]["text"]["text"]) <= 300
    assert "waiting for approval" in h.last_ephemeral(ALICE).visible_text
    h.click(posted, "Approve", user=BOB)
    h.settle()
    assert [r for r in h.sim.requests if r.method == "POST" and r.path.endswith("/restore/")]


# ---- by construction -------------------------------------------------------------------------------------
def _mrkdwn_calls_with_non_literal_text() -> list[str]:
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() in ("bot/mrkdwn.py", "bot/usecases/wording.py"):
            continue  # the makers themselves
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Mrkdwn", "Text"):
                literal = not node.keywords and (
                    (
                        len(node.args) == 1
                        and isinstance(node.args[0], ast.Constant)
                        and isinstance(node.args[0].value, str)
                    )
                    or (not node.args and node.func.id == "Text")
                )
                if not literal:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return offenders


def test_mrkdwn_is_only_ever_made_from_a_string_literal() -> None:
    """`Mrkdwn(...)` and use cases' `Text(...)` mean "a developer wrote this": anything computed must go through
    code()/plain()/sentence()/format()."""
    assert _mrkdwn_calls_with_non_literal_text() == []


@pytest.mark.parametrize("combine", ["add", "radd", "format", "join"])
def test_mixing_plain_strings_into_mrkdwn_is_refused(combine: str) -> None:
    from bot.mrkdwn import Mrkdwn
    from bot.slack.blocks import notice

    raw = "<!channel>"
    if combine == "add":
        with pytest.raises(TypeError):
            _ = Mrkdwn("a ") + raw  # type: ignore[operator]
    elif combine == "radd":
        with pytest.raises(TypeError):
            notice(raw + Mrkdwn(" b"))  # type: ignore[arg-type]
    elif combine == "format":
        with pytest.raises(TypeError):
            Mrkdwn("server {}").format(raw)
    else:
        with pytest.raises(TypeError):
            Mrkdwn(", ").join([raw])
