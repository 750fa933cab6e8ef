"""What every request passes before a listener sees it: shape checks, workspace/app checks, retry de-duplication.

Slack signs what it sends, but a signed request is not necessarily a well-formed one (a new payload type, a
replayed or hand-made request with a leaked secret), so nothing below trusts a field's type without checking.
The answer to anything odd is a 4xx or a polite 200, never a 500 or a stack trace; a request that cannot be
verified as Slack's gets 401 and one log line before any of this (`SafeSlackRequestHandler`).

One module per check, in the order a request meets them: `verification` (the signature, in the WSGI handler),
`shape` (before Bolt's authorization), `ack_timing` (metrics only), `workspace` and `redelivery` (global
middleware, installed by `install`).
"""

from __future__ import annotations

from slack_bolt import App

from bot.config import Settings
from bot.runtime import Core
from bot.slack.middleware.ack_timing import RECEIVED_AT, AckReport, AckTiming
from bot.slack.middleware.redelivery import OncePerDelivery, delivery_key
from bot.slack.middleware.shape import MALFORMED, WellFormedPayloads, payload_problem
from bot.slack.middleware.verification import SafeSlackRequestHandler, unverifiable_reason
from bot.slack.middleware.workspace import FOREIGN_WORKSPACE, OnlyOurWorkspace, foreign_origin

__all__ = [
    "FOREIGN_WORKSPACE",
    "MALFORMED",
    "RECEIVED_AT",
    "AckTiming",
    "OncePerDelivery",
    "OnlyOurWorkspace",
    "SafeSlackRequestHandler",
    "WellFormedPayloads",
    "delivery_key",
    "foreign_origin",
    "install",
    "payload_problem",
    "unverifiable_reason",
]


def install(app: App, settings: Settings, core: Core, on_ack: AckReport | None = None) -> None:
    """Add ack timing (with `on_ack`), the origin check and retry de-duplication as global middleware, in order.

    `WellFormedPayloads` is not installed here: it must run before Bolt's own authorization middleware, so
    create_app passes it to `App(before_authorize=...)`.
    """
    if on_ack is not None:
        app.use(AckTiming(on_ack))
    app.use(OnlyOurWorkspace(settings, core))
    app.use(OncePerDelivery(core.deliveries))
