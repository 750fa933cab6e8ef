"""What every request passes before a listener sees it: shape checks, workspace/app checks, retry de-duplication.

Slack signs what it sends, but a signed request is not necessarily a well-formed one (a new payload type, a
replayed or hand-made request with a leaked secret), so nothing below trusts a field's type without checking.
The answer to anything odd is a 4xx or a polite 200, never a 500 or a stack trace; a request that cannot be
verified as Slack's gets 401 and one log line before any of this (`SafeSlackRequestHandler`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.middleware import Middleware
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.runtime import Core
from bot.usecases.context import Actor
from storage.audit import Action, Outcome
from storage.deliveries import DeliveryLog

log = logging.getLogger(__name__)

FOREIGN_WORKSPACE = (
    "This snapshot bot belongs to another Slack workspace, so it can't act on requests from yours. Nothing was done."
)
MALFORMED = "malformed request\n"
# The interaction types this app can receive; legacy ones (attachments, dialogs) it never asks for are refused.
_INTERACTION_TYPES = frozenset({"block_actions", "view_submission", "view_closed", "shortcut", "message_action"})
_EVENT_TYPES = frozenset({"event_callback", "url_verification", "app_rate_limited"})
_MAX_ID = 200  # ids Slack sends are far shorter; longer "ids" are not from Slack
_MAX_ACTIONS = 25  # a block_actions payload carries one action; 25 is Slack's element limit per block
# Retried Events API deliveries come within minutes; a day of keys is plenty, older ones are pruned.


# ---- transport: verify first, then parse -------------------------------------------------------------------
SIGNATURE_MAX_AGE_SECONDS = 5 * 60  # Slack's own rule: older (or further in the future) is a replay
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # plain digits: int() would also take " 1_0", "+1", "١", and 5000 digits


class SafeSlackRequestHandler(SlackRequestHandler):
    """Bolt's WSGI handler, verifying before anything else happens.

    Every request is checked here first (`unverifiable_reason`): one that cannot be verified — no or a
    malformed or stale timestamp, no or a wrong signature, a body too big to read — gets 401 and exactly one
    log line, never reaching Bolt (whose verifier raises on a non-numeric timestamp, which the app's error
    handler would turn into a 200, and logs whole bodies). A verified body Bolt can't parse gets 400 rather
    than the 500 Bolt would let escape.
    """

    def __init__(
        self,
        app: App,
        path: str = "/slack/events",
        *,
        max_body_bytes: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(app, path=path)
        self._max_body_bytes = max_body_bytes
        self._clock = clock

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        headers = request.get_headers()
        body, problem = self._read_body(request)
        if problem is None:
            secret = getattr(self.app, "_signing_secret", None) or ""
            problem = unverifiable_reason(secret, body, headers, now=self._clock())
        if problem is not None:
            remote = str(request.environ.get("REMOTE_ADDR") or "?")[:64]
            log.warning("refused an unverifiable request from %s with 401: %s", remote, problem)
            return BoltResponse(status=401, body="")
        try:
            raw = body.decode("utf-8")
        except UnicodeDecodeError:
            log.info("refused a signed request whose body is not UTF-8")
            return BoltResponse(status=400, body=MALFORMED)
        try:
            bolt_request = BoltRequest(body=raw, query=request.query_string, headers=headers)
            shaped = isinstance(bolt_request.body, dict)
        except Exception:  # JSONDecodeError, or Bolt's context extraction tripping over odd shapes
            shaped = False
        if not shaped:
            log.info("refused a signed request whose body is not a JSON object or form")
            return BoltResponse(status=400, body=MALFORMED)
        try:
            return self.app.dispatch(bolt_request)
        except Exception:  # Bolt catches listener and middleware errors; this is only the rest of it
            log.exception("request dispatch failed")
            return BoltResponse(status=400, body=MALFORMED)

    def _read_body(self, request: WsgiHttpRequest) -> tuple[bytes, str | None]:
        declared = str(request.environ.get("CONTENT_LENGTH") or "0").strip()
        if not declared.isascii() or not declared.isdigit():
            return b"", "Content-Length is not a number"
        length = int(declared) if len(declared) <= 12 else self._max_body_bytes + 1
        if length > self._max_body_bytes:
            # Not read at all, so it cannot be verified (and nothing that big comes from Slack).
            return b"", f"body of {length} bytes is over the {self._max_body_bytes}-byte limit"
        stream = request.environ.get("wsgi.input")
        if stream is None or length == 0:
            return b"", None
        try:
            return stream.read(length), None
        except (OSError, ValueError):  # the client went away mid-body
            return b"", "the body could not be read"


def unverifiable_reason(secret: str, body: bytes, headers: Mapping[str, Any], *, now: float) -> str | None:
    """Why this request is not provably from Slack (one short line for the log), or None when it is.

    Slack's scheme: `X-Slack-Signature` is `v0=` + HMAC-SHA256(signing secret, `v0:{timestamp}:{body}`), and
    `X-Slack-Request-Timestamp` is within five minutes of now. Header values are never echoed: they are the
    sender's words.
    """
    if not secret:
        return "no signing secret is configured"
    timestamp = _header(headers, "x-slack-request-timestamp")
    signature = _header(headers, "x-slack-signature")
    if timestamp is None:
        return "no X-Slack-Request-Timestamp header"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "X-Slack-Request-Timestamp is not a number"
    age = now - int(timestamp)
    if abs(age) > SIGNATURE_MAX_AGE_SECONDS:
        return f"X-Slack-Request-Timestamp is {abs(age):.0f}s in the {'past' if age > 0 else 'future'}"
    if signature is None:
        return "no X-Slack-Signature header"
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
        return "X-Slack-Signature does not match"
    return None


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return None if value is None else str(value)


# ---- shape ---------------------------------------------------------------------------------------------
def payload_problem(body: Any) -> str | None:
    """Why `body` is not a payload this app can handle safely, or None when it is."""
    if not isinstance(body, dict):
        return "not a JSON object"
    if "command" in body:
        return _slash_command_problem(body)
    kind = body.get("type")
    if not isinstance(kind, str):
        return "no payload type"
    if kind in _EVENT_TYPES:
        return _event_problem(body) if kind == "event_callback" else None
    if kind not in _INTERACTION_TYPES:
        return f"unknown payload type {kind[:40]!r}"
    user = body.get("user")
    if not isinstance(user, dict) or not _is_id(user.get("id")):
        return "no user"
    for key in ("team", "channel", "container", "message", "enterprise"):
        if body.get(key) is not None and not isinstance(body.get(key), dict):
            return f"{key} is not an object"
    for key in ("trigger_id", "response_url", "api_app_id"):
        if body.get(key) is not None and not isinstance(body.get(key), str):
            return f"{key} is not text"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not 0 < len(actions) <= _MAX_ACTIONS:
            return "no actions"
        for action in actions:
            # Bolt's listener matching reads action_id (and block_id when given) without checking.
            if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
                return "malformed action"
            if action.get("block_id") is not None and not isinstance(action.get("block_id"), str):
                return "malformed action"
            if action.get("value") is not None and not isinstance(action.get("value"), str):
                return "action value is not text"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        # Bolt itself reads view.type and view.callback_id when matching listeners.
        if not isinstance(view, dict) or not all(isinstance(view.get(k), str) for k in ("type", "callback_id")):
            return "no view"
        state = view.get("state")
        if state is not None and not (isinstance(state, dict) and isinstance(state.get("values", {}), dict)):
            return "malformed view state"
        if view.get("private_metadata") is not None and not isinstance(view.get("private_metadata"), str):
            return "private_metadata is not text"
    if kind in ("shortcut", "message_action") and not isinstance(body.get("callback_id"), str):
        return "shortcut without callback_id"
    return None


def _slash_command_problem(body: dict[str, Any]) -> str | None:
    # Form fields always arrive as strings; a JSON body pretending to be a command may not.
    for key in ("command", "user_id", "team_id"):
        if not _is_id(body.get(key)):
            return f"slash command without {key}"
    for key in ("text", "channel_id", "user_name", "trigger_id", "response_url", "api_app_id"):
        if body.get(key) is not None and not isinstance(body.get(key), str):
            return f"{key} is not text"
    return None


def _event_problem(body: dict[str, Any]) -> str | None:
    event = body.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "event callback without an event"
    if body.get("event_id") is not None and not _is_id(body.get("event_id")):
        return "malformed event_id"
    authorizations = body.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)
    ):
        return "malformed authorizations"
    return None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_ID


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
    team = body.get("team") if isinstance(body.get("team"), dict) else {}
    enterprise = body.get("enterprise") if isinstance(body.get("enterprise"), dict) else {}
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


# ---- retried deliveries ------------------------------------------------------------------------------------
def delivery_key(body: dict[str, Any]) -> str | None:
    """The de-duplication key of an Events API delivery (its event_id), or None for other requests."""
    event_id = body.get("event_id")
    if body.get("type") == "event_callback" and isinstance(event_id, str) and event_id:
        return f"event:{event_id}"
    return None


# ---- the middleware -----------------------------------------------------------------------------------------
# Plain `Middleware` classes, not `@app.middleware` functions: Bolt builds a function's keyword arguments from
# the body eagerly (`body["actions"][0]`, …), which raises on exactly the payloads these checks exist to stop.
class WellFormedPayloads(Middleware):
    """Runs right after Bolt's signature check (as `before_authorize`), before anything reads the body."""

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        problem = payload_problem(req.body)
        if problem is not None:
            log.info("refused a malformed request: %s", problem)
            return BoltResponse(status=400, body=MALFORMED)
        return next()


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
        audit = self._core.audit
        # In the background: the answer must not wait for (or fail with) the database.
        self._core.work.submit(audit.append, actor.entry(Action.REFUSED_TEAM, Outcome.REFUSED, details=details))
        return _refusal_response(body)


class OncePerDelivery(Middleware):
    """Slack retries an Events API delivery it thinks failed (X-Slack-Retry-Num); the retry is acked, not rerun."""

    def __init__(self, deliveries: DeliveryLog) -> None:
        self._deliveries = deliveries

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        key = delivery_key(req.body)
        if key is None:
            return next()
        try:
            first = self._deliveries.first_time(key)
        except SQLAlchemyError:
            # Without the database little can run anyway; handling a possible duplicate of a read-only event
            # (App Home) beats dropping it.
            log.warning("could not record delivery %s; handling it anyway", key)
            first = True
        if not first:
            retry = (req.headers.get("x-slack-retry-num") or ["?"])[0]
            log.info("skipped %s: already handled (Slack retry %s)", key, retry)
            return BoltResponse(status=200, body="")
        return next()


def install(app: App, settings: Settings, core: Core) -> None:
    """Add the origin check and retry de-duplication as global middleware, in that order.

    `WellFormedPayloads` is not installed here: it must run before Bolt's own authorization middleware, so
    create_app passes it to `App(before_authorize=...)`.
    """
    app.use(OnlyOurWorkspace(settings, core))
    app.use(OncePerDelivery(DeliveryLog(core.db)))
