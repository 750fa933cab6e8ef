"""The Bolt app: one `/snapshot` command, its buttons and forms, over HTTP or Socket Mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import Settings
from bot.runtime import Services
from bot.slack.listeners import actions, approvals, audit, commands, events, views
from bot.usecases.context import Actor
from storage.audit import Action, Outcome

log = logging.getLogger(__name__)


def make_web_client(settings: Settings) -> WebClient:
    """Slack's Web API client: honours SLACK_API_URL and retries 429s after Retry-After."""
    token = settings.slack_bot_token.reveal() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
    )


def slack_group_resolver(client: WebClient) -> Callable[[str], list[str]]:
    def resolve(group_id: str) -> list[str]:
        response = client.usergroups_users_list(usergroup=group_id)
        users = response.get("users")
        if not isinstance(users, list):
            raise ValueError("usergroups.users.list returned no user list")
        return [str(u) for u in users]

    return resolve


def create_app(settings: Settings, services: Services, client: WebClient, *, verify_token: bool = True) -> App:
    signing_secret = settings.slack_signing_secret.reveal() if settings.slack_signing_secret else ""
    app = App(
        client=client,
        signing_secret=signing_secret,
        token_verification_enabled=verify_token,
        # Listeners only parse and ack; slow work goes to services.work, so this pool never starves acks.
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="listener"),
        raise_error_for_unhandled_request=False,
    )

    @app.middleware
    def only_our_workspace(context: Any, body: dict[str, Any], next: Callable[[], Any]) -> Any:
        expected_team = settings.slack_team_id or (
            context.authorize_result.team_id if context.authorize_result is not None else None
        )
        team = context.team_id
        if expected_team and team and team != expected_team and not context.enterprise_id:
            actor_id = context.user_id or "unknown"
            log.warning("refused a request from workspace %s (expected %s)", team, expected_team)
            services.work.submit(
                services.audit.append,
                Actor(actor_id, "", team, context.channel_id).entry(
                    Action.REFUSED_TEAM, Outcome.REFUSED, details={"expected_team": expected_team}
                ),
            )
            return BoltResponse(status=403, body="This app serves another workspace.")
        return next()

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        # Never a stack trace in Slack: log it (redacted) and answer politely.
        log.exception("unhandled error in a listener: %s", type(error).__name__)
        return BoltResponse(status=200, body="Sorry — something went wrong on the bot's side. Nothing was changed.")

    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    approvals.register(app, services)
    audit.register(app, services)
    events.register(app, services)
    return app
