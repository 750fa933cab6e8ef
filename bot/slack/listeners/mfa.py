"""`/snapshot mfa enrol | confirm <code> | approve @user | status | reset @user`: authenticators for the TOTP
step-up (bot/usecases/mfa.py keeps the rules).

Every answer goes only to the person who typed the command (ephemeral); the enrolment URI, which holds the secret,
is shown once there and nowhere else, and a code typed in `confirm` is never echoed or logged.
"""

from __future__ import annotations

from bot.mrkdwn import Mrkdwn, mention
from bot.runtime import Core
from bot.slack import blocks as ui
from bot.slack.replies import Reply
from bot.slack.side import SlackSide
from bot.usecases.context import Actor, utcnow


def run_mfa(core: Core, slack: SlackSide, reply: Reply, actor: Actor, args: dict[str, str]) -> None:
    mfa = core.mfa
    action = args.get("action", "status")
    if action == "enrol":
        reply.ephemeral(ui.enrolment_answer(mfa.enrol(actor)))
    elif action == "confirm":
        reply.ephemeral(ui.confirm_answer(mfa.confirm(actor, args.get("code", ""))))
    elif action == "approve":
        user = args["user"]
        mfa.approve(actor, user)
        reply.ephemeral(Mrkdwn(":white_check_mark: {}'s authenticator is active now.").format(mention(user)))
    elif action == "reset":
        user = args["user"]
        if mfa.reset(actor, user):
            reply.ephemeral(
                Mrkdwn(":white_check_mark: {}'s authenticator was removed; they enrol again with {}.").format(
                    mention(user), Mrkdwn("`/snapshot mfa enrol`")
                )
            )
        else:
            reply.ephemeral(Mrkdwn("{} has no authenticator; nothing was changed.").format(mention(user)))
    else:
        status = mfa.status(actor, admin_view=mfa.is_admin(actor))
        reply.ephemeral(ui.status_answer(status, core.step_up.method, utcnow()))
