"""Only this workspace, org and app: a request from anywhere else is refused politely and audited."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.config import Settings
from bot.runtime import Core
from bot.usecases.context import Actor

log = logging.getLogger(__name__)

FOREIGN_WORKSPACE = (
    "This snapshot bot belongs to another Slack workspace, so it can't act on requests from yours. Nothing was done."
)


# ---- workspace and app -----------------------------------------------------------------------------------
def foreign_origin(settings: Settings, context: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """What gives the request away as coming from another workspace or app, or None when it is ours.

    The expected workspace is SLACK_TEAM_ID when set (an `E…` id means a whole Enterprise Grid org), else the
    one the bot token belongs to (auth.test). The app id is checked only when SLACK_APP_ID is set: auth.test
    does not return it, and one signing secret already belongs to one app.
    """
    configured = settings.slack_team_id
    auth = context.authorize_result
    if configured and configured.startswith("E"):
        found = foreign_to_org(configured, context.enterprise_id, body)
        if found is not None:
            return found
    else:
        expected = configured or (auth.team_id if auth is not None else None)
        if expected:
            # The user's own workspace too: in a channel shared with another organisation, the clicker
            # may belong to it even though the payload names our workspace.
            homes = acting_user_teams(body)
            if context.team_id != expected or any(home != expected for home in homes):
                return {"expected_team": expected, "team": context.team_id, "user_team": _first_of(homes)}
    app_id = settings.slack_app_id
    if app_id:
        seen = body.get("api_app_id")
        view = body.get("view")
        if seen is None and isinstance(view, dict):
            seen = view.get("app_id")
        if seen != app_id:
            return {"expected_app": app_id, "app": seen if isinstance(seen, str) else None}
    return None


def acting_user_teams(body: dict[str, Any]) -> list[str]:
    """The team (T…) or org (E…) ids Slack gives for the acting user's *own* membership, wherever it puts them.

    Interactions carry `user.team_id` (in an Enterprise Grid org, the org id); events about a user in a shared
    channel carry `event.user_team` (or a `user` object with `team_id`). Slash commands carry none: their
    `team_id`/`enterprise_id` are the user's own workspace and org.
    """
    found: list[Any] = []
    user = body.get("user")
    if isinstance(user, dict):
        found.append(user.get("team_id"))
    event = body.get("event")
    if isinstance(event, dict):
        found.append(event.get("user_team"))
        if isinstance(event.get("user"), dict):
            found.append(event["user"].get("team_id"))
    return [value for value in found if value is not None]


def foreign_to_org(org: str, context_enterprise: str | None, body: dict[str, Any]) -> dict[str, Any] | None:
    """With SLACK_TEAM_ID=E… (a whole Enterprise Grid org): what names another org, or None.

    Every org id in the request must be ours: the installation's (Bolt's context), the workspace's
    (`team.enterprise_id`, `enterprise.id`, a command's or event envelope's `enterprise_id`) and the acting
    user's own. A user's own team given as a workspace id (T…) must be one the request itself places in our org;
    anything else (a partner org's user clicking in a shared channel) is foreign. Fails closed: an org id that
    is missing where the installation's should be refuses the request.
    """
    if context_enterprise != org:
        return {"expected_enterprise": org, "enterprise": context_enterprise}
    team = given if isinstance(given := body.get("team"), dict) else {}
    enterprise = named if isinstance(named := body.get("enterprise"), dict) else {}
    named = [team.get("enterprise_id"), enterprise.get("id"), body.get("enterprise_id")]
    for value in named:
        if value is not None and value != org:
            return {"expected_enterprise": org, "enterprise": value}
    # Workspaces this request shows to be part of the org.
    ours = {org}
    if isinstance(team.get("id"), str) and team.get("enterprise_id", enterprise.get("id", org)) == org:
        ours.add(team["id"])
    if isinstance(body.get("team_id"), str) and body.get("enterprise_id") == org:
        ours.add(body["team_id"])  # a command's or an event's workspace, in the org
    for home in acting_user_teams(body):
        if not isinstance(home, str) or home not in ours:
            return {"expected_enterprise": org, "enterprise": context_enterprise, "user_team": home}
    return None


def _first_of(values: list[str]) -> str | None:
    return values[0] if values else None


def _refusal_response(body: dict[str, Any]) -> BoltResponse:
    if "command" in body:  # the person who typed it sees why nothing happened
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": ":no_entry: " + FOREIGN_WORKSPACE})
    if body.get("type") == "event_callback":
        return BoltResponse(status=200, body="")  # acknowledged, so Slack does not retry it; nothing ran
    return BoltResponse(status=403, body=FOREIGN_WORKSPACE)


def _clip(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) else None


class OnlyOurWorkspace(Middleware):
    """Refuses (and audits) requests from another workspace, org or app: see `foreign_origin`."""

    def __init__(self, settings: Settings, core: Core) -> None:
        self._settings = settings
        self._core = core

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        context, body = req.context, req.body
        found = foreign_origin(self._settings, context, body)
        if found is None:
            return next()
        log.warning("refused a request from another workspace or app: %s", found)
        user = body.get("user")
        actor = Actor(
            _clip(context.user_id) or "unknown",
            _clip(user.get("username") if isinstance(user, dict) else body.get("user_name")) or "",
            _clip(context.team_id),
            _clip(context.channel_id),
        )
        details = {k: _clip(v) for k, v in found.items()} | {"payload_type": _clip(body.get("type") or "command")}
        # In the background: the answer must not wait for (or fail with) the database.
        self._core.work.submit(self._core.guard.record_foreign_origin, actor, details)
        return _refusal_response(body)
