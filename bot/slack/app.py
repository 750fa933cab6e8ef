"""The Bolt app: one `/snapshot` command, its buttons and forms, over HTTP or Socket Mode."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltResponse
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.runtime import Core
from bot.slack import middleware
from bot.slack.listeners import (
    approvals,
    audit,
    commands,
    creating,
    deleting,
    home,
    listing,
    restores,
    schedules,
    step_up_form,
)
from bot.slack.middleware.ack_timing import AckReport
from bot.slack.observed_errors import ErrorReport, SlackErrorObserver
from bot.slack.retry import retry_handlers
from bot.slack.side import SlackSide

log = logging.getLogger(__name__)

SORRY = "Sorry — something went wrong on the bot's side. Nothing was changed."


def make_web_client(settings: Settings, *, rate_limits: bool = True, on_error: ErrorReport | None = None) -> WebClient:
    """Slack's Web API client: honours SLACK_API_URL and retries as bot/slack/retry.py says (429s after
    Retry-After unless `rate_limits=False`, for the Notifier, which retries those itself). Calls that still
    fail are reported to `on_error` (the metrics)."""
    token = settings.slack_bot_token.reveal() if settings.slack_bot_token else None
    handlers = retry_handlers(rate_limits=rate_limits)
    if on_error is not None:  # first, so it sees every attempt before a handler takes it for a retry
        handlers.insert(0, SlackErrorObserver(on_error))
    return WebClient(token=token, base_url=settings.slack_api_url, timeout=15, retry_handlers=handlers)


class _ClientGivenOnPurpose(logging.Filter):
    """Drops Bolt's "As you gave `client` as well, `token` will be unused" (issue 24 §3).

    Bolt reads SLACK_BOT_TOKEN from the environment whatever it is given, and warns at every boot when a client
    comes too; the bot gives its own client (SLACK_API_URL, retries) with that same token on purpose. Only that
    one message is dropped; every other Bolt line passes.
    """

    _expected = warning_client_prioritized_and_token_skipped()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self._expected


logging.getLogger("slack_bolt.App").addFilter(_ClientGivenOnPurpose())  # Bolt's framework logger for App


def slack_group_resolver(client: WebClient) -> Callable[[str], list[str]]:
    """Members of a Slack user group (usergroups.users.list). Raises with a short, token-free reason on failure,
    which the access check shows to the refused user."""

    def resolve(group_id: str) -> list[str]:
        try:
            response = client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as error:
            # Slack's own words ("missing_scope", "no_such_subteam"), not the whole request description.
            raise LookupError(f"Slack answered {error.response.get('error') or 'an error'}") from None
        except Exception as error:  # network: the type says enough, the message may hold a URL
            raise LookupError(f"Slack could not be reached ({type(error).__name__})") from None
        users = response.get("users")
        if not isinstance(users, list):
            raise LookupError("Slack's answer held no member list")
        return [str(u) for u in users]

    return resolve


def create_app(settings: Settings, core: Core, slack: SlackSide, *, on_ack: AckReport | None = None) -> App:
    signing_secret = settings.slack_signing_secret.reveal() if settings.slack_signing_secret else ""
    app = App(
        client=slack.client,
        signing_secret=signing_secret,
        # Bolt's own auth.test at construction would stop the process when Slack is unreachable at start; it is
        # done by bot/readiness.py instead (retried, gating /readyz), and Bolt calls it on the first request.
        token_verification_enabled=False,
        # Listeners only parse and ack; slow work goes to core.work, so this pool never starves acks.
        listener_executor=core.listeners,
        raise_error_for_unhandled_request=False,
        # Right after the signature check: nothing, Bolt included, reads a body before its shape is checked.
        before_authorize=middleware.WellFormedPayloads(),
    )

    # Then ack timing, the workspace/app check and retry de-duplication, which rely on the shape check.
    middleware.install(app, settings, core, on_ack)

    @app.error
    def on_error(error: Exception, body: Any, response: BoltResponse | None) -> BoltResponse | None:
        # Never a stack trace in Slack: log it (redacted by the log formatter) and answer politely. With no
        # response left to shape (the listener had already acked), the log line is all there is to do.
        log.exception("unhandled error while handling a Slack request: %s", type(error).__name__)
        if response is None:
            return None
        return BoltResponse(status=200, body=SORRY)

    # One `register` per feature: its buttons, forms and events (the slash command routes to the same modules).
    commands.register(app, core, slack)
    listing.register(app, core, slack)
    creating.register(app, core, slack)
    deleting.register(app, core, slack)
    restores.register(app, core, slack)
    approvals.register(app, core, slack)
    step_up_form.register(app, core, slack)
    schedules.register(app, core, slack)
    audit.register(app, core)
    home.register(app, core, slack)
    _acknowledge_the_rest(app)
    return app


def _acknowledge_the_rest(app: App) -> None:
    """Registered last, so they only see what no listener above took: buttons of an older bot version, link
    buttons, other event types. Acked (Slack would otherwise show an error, or retry an event until it gives up
    on the app) and nothing else."""
    anything = re.compile(".*")

    @app.action(anything)
    def other_action(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        log.info("ignored an action nothing handles: %s", _action_id(body))

    @app.view(anything)
    def other_view(ack: Ack) -> None:
        ack()

    @app.event(anything)
    def other_event() -> None:
        pass  # events are acked automatically

    @app.command(anything)
    def other_command(ack: Ack) -> None:
        ack(response_type="ephemeral", text="This app only knows `/snapshot`. Try `/snapshot help`.")


def _action_id(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("action_id", ""))[:80]
