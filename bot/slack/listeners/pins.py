"""`/snapshot pin <id> [reason…]` and `/snapshot unpin <id>`: parse the id, call the pins use case, answer.

The answers go to the person who typed the command (ephemeral); the reason is the pinner's text and is rendered
quoted and escaped (bot/usecases/pin_rules.py words it), so a mention or markup in it stays inert.
"""

from __future__ import annotations

from bot.runtime import Core
from bot.slack.listeners.ids import audited_id
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.slack.wording import render
from bot.usecases.context import Actor
from bot.usecases.pin_rules import pin_words
from bot.usecases.wording import Text, code, command


def pin(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    snapshot_id = audited_id(core, actor, args["snapshot_id"], "snapshot id", operation="pin")
    result = core.pins.pin(actor, snapshot_id, args.get("reason", ""))
    held = result.pin
    if result.created:
        text = Text(":pushpin: Snapshot {} (#{}) is {}. Schedules and “Free oldest” will not delete it.").format(
            code(held.snapshot_name, 64), held.snapshot_id, pin_words(held)
        )
    else:
        text = Text("Snapshot {} (#{}) was already {}; nothing was changed.").format(
            code(held.snapshot_name, 64), held.snapshot_id, pin_words(held)
        )
    reply.ephemeral(render(text))


def unpin(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    snapshot_id = audited_id(core, actor, args["snapshot_id"], "snapshot id", operation="unpin")
    removed = core.pins.unpin(actor, snapshot_id)
    reply.ephemeral(
        render(
            Text("Snapshot {} (#{}) is no longer pinned; it can be deleted again ({}).").format(
                code(removed.snapshot_name, 64), removed.snapshot_id, command("delete", str(removed.snapshot_id))
            )
        )
    )
