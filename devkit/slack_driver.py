"""Send Slack-shaped, signed requests to the bot, as Slack itself would: slash commands, button clicks,
modal submissions and Events API callbacks.

The wire formats follow Slack's docs exactly (form-encoded slash commands, `payload=<json>` interactivity,
JSON events, `v0` HMAC-SHA256 signatures), so a request the bot accepts from the driver is one it accepts
from Slack. Command text is given as a user types it and encoded as Slack encodes it (`&amp;`, `<@U…|name>`,
`<https://…>`: see `slack_text`), so no test can hand the bot text Slack would never send.
A `Sender` decides how the bytes travel: over HTTP (`http_sender`) or straight into a WSGI app in-process
(`wsgi_sender`), see `senders`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlencode

from devkit.fake_slack import find_action
from devkit.senders import DriverResponse, Sender, http_sender, wsgi_sender
from devkit.slack_text import SlackDirectory, encode_typed_text

# The senders are part of the driver's interface: `SlackDriver(wsgi_sender(app), ...)`.
__all__ = ["EVENTS_PATH", "DriverResponse", "ResponseUrlFactory", "Sender", "SlackDriver", "http_sender", "wsgi_sender"]

EVENTS_PATH = "/slack/events"
# Hosts under .invalid never resolve (RFC 2606): a placeholder response_url can never reach the network.
_PLACEHOLDER_RESPONSE_HOST = "https://hooks.slack.invalid"
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


class ResponseUrlFactory(Protocol):
    """Makes a response_url, e.g. `FakeSlack.new_response_url`."""

    def __call__(
        self,
        *,
        message_channel: str | None = ...,
        message_ts: str | None = ...,
        channel: str | None = ...,
        user_id: str | None = ...,
    ) -> str: ...


class SlackDriver:
    """Plays Slack's side of the conversation with the app: builds, signs and sends each request."""

    def __init__(
        self,
        send: Sender,
        signing_secret: str,
        *,
        team_id: str = "T0SNAPBOT",
        api_app_id: str = "A0SNAPBOT",
        clock: Callable[[], float] = time.time,
        path: str = EVENTS_PATH,
        team_domain: str = "snapbot-test",
        bot_user_id: str = "U0SNAPBOT",
        bot_id: str = "B0SNAPBOT",
        response_url_factory: ResponseUrlFactory | None = None,
        directory: SlackDirectory | None = None,
    ) -> None:
        """`response_url_factory` (e.g. `fake_slack.new_response_url`) mints a response_url for every request
        that does not pass one, tied to the clicked message, so `replace_original` works without plumbing.
        `directory` (e.g. the FakeSlack) says which typed `@name`/`#name` are real users, groups and channels,
        which Slack turns into mentions; without one, only `@here`/`@channel`/`@everyone` and links are."""
        self._send = send
        self._secret = signing_secret.encode("utf-8")
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.path = path
        self._clock = clock
        self._response_url_factory = response_url_factory
        self.directory = directory
        self._counter = itertools.count(1)

    # -- signing ---------------------------------------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Slack's request-signing headers for `body`: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
        ts = int(self._clock()) if timestamp is None else int(timestamp)
        base = b"v0:" + str(ts).encode() + b":" + body
        digest = hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}

    def send_raw(self, body: bytes, headers: dict[str, str]) -> DriverResponse:
        """Send exactly these bytes and headers, unsigned: for bad-signature and malformed-request tests."""
        return self._send(self.path, dict(headers), body)

    def _send_signed(self, body: bytes, content_type: str) -> DriverResponse:
        headers = {"Content-Type": content_type, **self.sign(body)}
        return self._send(self.path, headers, body)

    def encode_text(self, typed: str) -> str:
        """`typed` as Slack would send it in a slash command's `text` (escaped; mentions and links made)."""
        return encode_typed_text(typed, self.directory)

    # -- ids -------------------------------------------------------------------------------------------------

    def new_trigger_id(self) -> str:
        """A unique trigger_id in Slack's shape ("<n>.<n>.<hex>")."""
        n = next(self._counter)
        return f"{1_000_000_000 + n}.{int(self._clock())}.{uuid.uuid4().hex}"

    def _response_url(
        self,
        given: str | None,
        *,
        channel: str | None,
        user_id: str,
        message_channel: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        if given:
            return given
        if self._response_url_factory is not None:
            return self._response_url_factory(
                message_channel=message_channel, message_ts=message_ts, channel=channel, user_id=user_id
            )
        return f"{_PLACEHOLDER_RESPONSE_HOST}/commands/{self.team_id}/{next(self._counter)}/{uuid.uuid4().hex}"

    def _user(self, user_id: str, user_name: str, team_id: str) -> dict[str, str]:
        name = user_name or user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": team_id}

    # -- requests --------------------------------------------------------------------------------------------

    def command(
        self,
        text: str,
        *,
        user_id: str,
        user_name: str = "",
        channel_id: str = "C0OPS",
        command: str = "/snapshot",
        response_url: str | None = None,
        trigger_id: str | None = None,
        team_id: str | None = None,
        channel_name: str | None = None,
        raw_text: bool = False,
    ) -> DriverResponse:
        """A slash command, form-encoded exactly as Slack posts it.

        `text` is what the user typed; it is sent the way Slack sends it (`encode_typed_text`). With
        `raw_text=True` it is sent exactly as given: for text already in Slack's form, or hostile requests.
        """
        team = team_id or self.team_id
        form = {
            "token": "fake-verification-token",
            "team_id": team,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name or channel_id.lower(),
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text if raw_text else self.encode_text(text),
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url(response_url, channel=channel_id, user_id=user_id),
            "trigger_id": trigger_id or self.new_trigger_id(),
        }
        return self._send_signed(urlencode(form).encode("utf-8"), _FORM)

    def block_action(
        self,
        action_id: str,
        value: str,
        *,
        user_id: str,
        user_name: str = "",
        channel_id: str | None = None,
        message: dict[str, Any] | Any | None = None,
        block_id: str = "b",
        response_url: str | None = None,
        trigger_id: str | None = None,
        team_id: str | None = None,
    ) -> DriverResponse:
        """A button click (`block_actions`) as Slack posts it: a `payload=<json>` form field.

        `message` is the message the button was in (a dict like Slack's, or a FakeMessage); without one the
        click is on an ephemeral message, which Slack sends without a `message`. `channel_id` defaults to the
        message's channel, else "C0OPS".
        """
        team = team_id or self.team_id
        message_dict = _as_message_dict(message)
        channel = channel_id or (message_dict or {}).get("channel") or "C0OPS"
        action = _action_for(message_dict, action_id, value, block_id, action_ts=self._fake_ts())
        container: dict[str, Any] = {"type": "message", "channel_id": channel}
        if message_dict is not None:
            container.update(message_ts=message_dict.get("ts"), is_ephemeral=False)
        else:
            container.update(message_ts=self._fake_ts(), is_ephemeral=True)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id, user_name, team),
            "api_app_id": self.api_app_id,
            "token": "fake-verification-token",
            "container": container,
            "trigger_id": trigger_id or self.new_trigger_id(),
            "team": {"id": team, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": channel.lower()},
            "state": {"values": {}},
            "response_url": self._response_url(
                response_url,
                channel=channel,
                user_id=user_id,
                message_channel=channel if message_dict is not None else None,
                message_ts=message_dict.get("ts") if message_dict is not None else None,
            ),
            "actions": [action],
        }
        if message_dict is not None:
            payload["message"] = message_dict
        return self._send_signed(urlencode({"payload": json.dumps(payload)}).encode("utf-8"), _FORM)

    def click(
        self,
        message: dict[str, Any] | Any,
        text_or_action_id: str,
        *,
        user_id: str,
        user_name: str = "",
        response_url: str | None = None,
        trigger_id: str | None = None,
    ) -> DriverResponse:
        """Click the button labelled (or with action_id) `text_or_action_id` in `message`."""
        message_dict = _as_message_dict(message) or {}
        block_id, element = find_action(message_dict.get("blocks", []), text_or_action_id)
        return self.block_action(
            str(element["action_id"]),
            str(element.get("value", "")),
            user_id=user_id,
            user_name=user_name,
            message=message_dict,
            block_id=block_id,
            response_url=response_url,
            trigger_id=trigger_id,
        )

    def block_suggestion(
        self,
        action_id: str,
        typed: str,
        *,
        user_id: str,
        block_id: str,
        view: dict[str, Any] | None = None,
        user_name: str = "",
        team_id: str | None = None,
    ) -> DriverResponse:
        """An external select asking for its options (`block_suggestion`) as Slack posts it, with what was typed.

        `view` is the modal the select is in (as opened); Slack sends it, private_metadata included. The answer's
        JSON is the `options` (or `option_groups`) Slack would show."""
        team = team_id or self.team_id
        view_id = str((view or {}).get("id") or "V" + uuid.uuid4().hex[:10].upper())
        payload: dict[str, Any] = {
            "type": "block_suggestion",
            "user": self._user(user_id, user_name, team),
            "container": {"type": "view", "view_id": view_id},
            "api_app_id": self.api_app_id,
            "token": "fake-verification-token",
            "action_id": action_id,
            "block_id": block_id,
            "value": typed,
            "team": {"id": team, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": {
                "id": view_id,
                "team_id": team,
                "type": "modal",
                "blocks": (view or {}).get("blocks", []),
                "private_metadata": (view or {}).get("private_metadata", ""),
                "callback_id": (view or {}).get("callback_id", ""),
                "state": {"values": {}},
                "app_id": self.api_app_id,
                "bot_id": self.bot_id,
            },
        }
        return self._send_signed(urlencode({"payload": json.dumps(payload)}).encode("utf-8"), _FORM)

    def view_submission(
        self,
        callback_id: str,
        values: dict[str, dict[str, dict[str, Any]]],
        *,
        user_id: str,
        private_metadata: str = "",
        user_name: str = "",
        team_id: str | None = None,
        view_id: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> DriverResponse:
        """A modal submission (`view_submission`).

        `values` is view.state.values: {block_id: {action_id: {"type": ..., "value": ...}}}.
        """
        team = team_id or self.team_id
        view_id = view_id or "V" + uuid.uuid4().hex[:10].upper()
        payload = {
            "type": "view_submission",
            "team": {"id": team, "domain": self.team_domain},
            "user": self._user(user_id, user_name, team),
            "api_app_id": self.api_app_id,
            "token": "fake-verification-token",
            "trigger_id": self.new_trigger_id(),
            "view": {
                "id": view_id,
                "team_id": team,
                "type": "modal",
                "blocks": blocks or [],
                "private_metadata": private_metadata,
                "callback_id": callback_id,
                "state": {"values": values},
                "hash": f"{int(self._clock())}.{uuid.uuid4().hex[:8]}",
                "title": {"type": "plain_text", "text": "Snapshot bot"},
                "root_view_id": view_id,
                "previous_view_id": None,
                "app_id": self.api_app_id,
                "external_id": "",
                "bot_id": self.bot_id,
            },
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }
        return self._send_signed(urlencode({"payload": json.dumps(payload)}).encode("utf-8"), _FORM)

    def event(self, event: dict[str, Any], *, team_id: str | None = None) -> DriverResponse:
        """An Events API `event_callback` wrapping `event`, sent as JSON like Slack does."""
        team = team_id or self.team_id
        now = int(self._clock())
        envelope = {
            "token": "fake-verification-token",
            "team_id": team,
            "api_app_id": self.api_app_id,
            "event": {"event_ts": f"{now}.{next(self._counter):06d}", **event},
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": now,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return self._send_signed(json.dumps(envelope).encode("utf-8"), _JSON)

    def app_home_opened(self, user_id: str) -> DriverResponse:
        """The user opened the app's Home tab."""
        return self.event({"type": "app_home_opened", "user": user_id, "channel": "D" + user_id[1:], "tab": "home"})

    def _fake_ts(self) -> str:
        return f"{int(self._clock())}.{next(self._counter):06d}"


def _as_message_dict(message: Any) -> dict[str, Any] | None:
    if message is None:
        return None
    if isinstance(message, dict):
        return message
    as_payload = getattr(message, "as_payload", None)
    if callable(as_payload):
        result = as_payload()
        if isinstance(result, dict):
            return result
    raise TypeError(f"message must be a dict or a FakeMessage, not {type(message).__name__}")


def _action_for(
    message: dict[str, Any] | None, action_id: str, value: str, block_id: str, *, action_ts: str
) -> dict[str, Any]:
    """The `actions[0]` entry Slack sends: copied from the element in the message when it is there."""
    element: dict[str, Any] | None = None
    for block in (message or {}).get("blocks", []) or []:
        candidates = [*(block.get("elements", []) or []), block.get("accessory") or {}]
        for candidate in candidates:
            if isinstance(candidate, dict) and candidate.get("action_id") == action_id:
                element = candidate
                block_id = str(block.get("block_id", block_id))
                break
        if element is not None:
            break
    kind = (element or {}).get("type", "button")
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": kind,
        "action_ts": action_ts,
    }
    if kind == "button":
        action["value"] = value
        action["text"] = (element or {}).get("text") or {
            "type": "plain_text",
            "text": action_id,
            "emoji": True,
        }
        if element and "style" in element:
            action["style"] = element["style"]
    elif kind in ("static_select", "external_select"):
        option = next((o for o in (element or {}).get("options", []) if o.get("value") == value), None)
        action["selected_option"] = option or {"text": {"type": "plain_text", "text": value}, "value": value}
    else:
        action["value"] = value
    return action
