"""The Web API methods the bot calls (chat.*, views.*, users.info, conversations.*, ...) and response_url posts,
each as Slack answers it, applied to the fake's state. Called with `FakeSlack`'s lock held; errors are raised
as `ApiError(code)` and become `{"ok": false, "error": code}`.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from devkit.fake_slack.records import (
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_METHOD,
    RESPONSE_URL_TTL_SECONDS,
    ApiError,
    Failure,
    FakeEphemeral,
    FakeMessage,
    FakeView,
    ResponseUrl,
)
from devkit.fake_slack.validation import message_content, validate_view

# Methods that take the app-level token instead of the bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
_TS_BASE_SECONDS = 1_700_000_000


class WebApiMethods:
    """The method handlers of `FakeSlack`, which provides the state declared here and `_take_failure`/`dm_channel`."""

    team_id: str
    team_domain: str
    bot_user_id: str
    bot_id: str
    api_app_id: str
    bot_token: str
    app_token: str
    users: dict[str, dict[str, Any]]
    channels: dict[str, dict[str, Any]]
    usergroup_members: dict[str, list[str]]
    _clock: Callable[[], float]
    _socket_mode_url: Callable[[], str] | None
    _messages: dict[str, dict[str, FakeMessage]]
    _ephemerals: list[FakeEphemeral]
    _views: dict[str, FakeView]
    _view_log: list[FakeView]
    _response_urls: dict[str, ResponseUrl]
    _ts_counter: Iterator[int]

    def _take_failure(self, method: str) -> Failure | None:
        raise NotImplementedError

    def dm_channel(self, user_id: str) -> str:
        raise NotImplementedError

    def _apply_response_url(self, url: str, args: dict[str, Any]) -> tuple[int, str | None]:
        failure = self._take_failure(RESPONSE_URL_METHOD)
        if failure is not None:
            return failure.status, failure.error
        entry = self._response_urls.get(url)
        if entry is None:
            return 404, "invalid_url"
        if entry.expired or self._clock() - entry.created_at > RESPONSE_URL_TTL_SECONDS:
            return 404, "expired_url"
        if entry.uses >= RESPONSE_URL_MAX_USES:
            return 404, "used_url"
        try:
            text, blocks = message_content(args)
        except ApiError as exc:
            return 400, exc.error
        entry.uses += 1

        original = None
        if entry.message_channel and entry.message_ts:
            original = self._messages.get(entry.message_channel, {}).get(entry.message_ts)
        if truthy(args.get("delete_original")):
            if original is not None:
                original.deleted = True
            return 200, None
        if truthy(args.get("replace_original")) and original is not None:
            original.text = text
            original.blocks = blocks
            original.updates += 1
            return 200, None
        if args.get("response_type") == "in_channel" and entry.channel:
            self._post(entry.channel, text, blocks, args.get("thread_ts"))
            return 200, None
        self._ephemerals.append(
            FakeEphemeral(
                channel=entry.channel,
                user=entry.user_id,
                text=text,
                blocks=blocks,
                source=RESPONSE_URL_METHOD,
                replace_original=truthy(args.get("replace_original")),
                response_url=url,
            )
        )
        return 200, None

    def _check_token(self, method: str, token: str | None, in_header: bool) -> None:
        if token is None:
            raise ApiError("not_authed")
        wants_app_token = method in _APP_TOKEN_METHODS
        expected, other = (self.app_token, self.bot_token) if wants_app_token else (self.bot_token, self.app_token)
        if token == other:
            raise ApiError("not_allowed_token_type")
        if token != expected:
            raise ApiError("invalid_auth")
        if wants_app_token and not in_header:
            # Slack's docs: the app-level token goes in the Authorization header; as a POST parameter it fails.
            raise ApiError("not_authed")

    # -- Web API methods (called with the lock held) ---------------------------------------------------------

    def _dispatch(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = _HANDLERS.get(method)
        return handler(self, args) if handler is not None else {}

    def _next_ts(self) -> str:
        n = next(self._ts_counter)
        return f"{_TS_BASE_SECONDS + n}.{n * 100 % 1_000_000:06d}"

    def _resolve_channel(self, channel: Any) -> str:
        if not channel:
            raise ApiError("channel_not_found")
        channel = str(channel)
        if channel[:1] in ("U", "W"):
            return self.dm_channel(channel)
        return channel

    def _post(self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: Any) -> FakeMessage:
        message = FakeMessage(
            channel=channel,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=str(thread_ts) if thread_ts else None,
            updates=0,
            user=self.bot_user_id,
        )
        self._messages.setdefault(channel, {})[message.ts] = message
        return message

    def _find_message(self, channel: Any, ts: Any) -> FakeMessage:
        message = self._messages.get(str(channel), {}).get(str(ts))
        if message is None or message.deleted:
            raise ApiError("message_not_found")
        return message

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "Snapshot Bot Test",
            "user": "snapshot-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if self._socket_mode_url is None:
            raise ApiError("access_denied")
        return {"url": self._socket_mode_url()}

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        if self.channels.get(channel, {}).get("is_member") is False:
            raise ApiError("not_in_channel")
        text, blocks = message_content(args)
        if not text and not blocks and not args.get("attachments"):
            raise ApiError("no_text")
        message = self._post(channel, text, blocks, args.get("thread_ts"))
        return {
            "channel": channel,
            "ts": message.ts,
            "message": message.as_payload() | {"bot_id": self.bot_id},
        }

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find_message(args.get("channel"), args.get("ts"))
        text, blocks = message_content(args)
        if "text" in args:
            message.text = text
        # Slack keeps the previous blocks when `blocks` is omitted; an empty list removes them.
        if "blocks" in args:
            message.blocks = blocks
        message.updates += 1
        return {
            "channel": message.channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.as_payload(),
        }

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first, paged by `limit` and an opaque cursor; edited messages carry Slack's `edited` field."""
        channel = self._resolve_channel(args.get("channel"))
        alive = [m for m in self._messages.get(channel, {}).values() if not m.deleted and not m.thread_ts]
        alive.sort(key=lambda m: float(m.ts), reverse=True)
        start = int(args.get("cursor") or 0)
        limit = max(1, min(int(args.get("limit") or 100), 1000))
        page = alive[start : start + limit]
        messages = []
        for message in page:
            item = message.as_payload() | {"bot_id": self.bot_id}
            if message.updates:
                item["edited"] = {"user": self.bot_user_id, "ts": message.ts}
            messages.append(item)
        more = start + limit < len(alive)
        return {
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find_message(args.get("channel"), args.get("ts"))
        message.deleted = True
        return {"channel": message.channel, "ts": message.ts}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        user = args.get("user")
        if not user:
            raise ApiError("user_not_in_channel")
        text, blocks = message_content(args)
        if not text and not blocks and not args.get("attachments"):
            raise ApiError("no_text")
        ts = self._next_ts()
        self._ephemerals.append(
            FakeEphemeral(
                channel=channel,
                user=str(user),
                text=text,
                blocks=blocks,
                source="chat.postEphemeral",
                ts=ts,
                thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None,
            )
        )
        return {"message_ts": ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("message_ts")
        if not channel or not ts:
            raise ApiError("message_not_found")
        permalink = f"https://{self.team_domain}.slack.com/archives/{channel}/p{str(ts).replace('.', '')}"
        return {"channel": channel, "permalink": permalink}

    def _view_response(self, view: FakeView) -> dict[str, Any]:
        body = copy.deepcopy(view.view)
        body.update(
            {
                "id": view.view_id,
                "team_id": self.team_id,
                "app_id": self.api_app_id,
                "bot_id": self.bot_id,
                "hash": f"{view.view_id}.{view.updates}",
                "root_view_id": view.view_id,
                "state": {"values": {}},
            }
        )
        body.setdefault("private_metadata", "")
        body.setdefault("callback_id", "")
        return {"view": body}

    def _store_view(self, method: str, view: dict[str, Any], **fields: Any) -> dict[str, Any]:
        record = FakeView(view_id="V" + uuid.uuid4().hex[:10].upper(), method=method, view=view, **fields)
        self._views[record.view_id] = record
        self._view_log.append(copy.deepcopy(record))
        return self._view_response(record)

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing trigger_id"]})
        view = validate_view(args.get("view"))
        return self._store_view("views.open", view, trigger_id=str(args["trigger_id"]))

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing trigger_id"]})
        view = validate_view(args.get("view"))
        return self._store_view("views.push", view, trigger_id=str(args["trigger_id"]))

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = validate_view(args.get("view"))
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        record = self._views.get(str(view_id)) if view_id else None
        if record is None and external_id:
            record = next((v for v in self._views.values() if v.view.get("external_id") == external_id), None)
        if record is None:
            raise ApiError("not_found")
        record.view = view
        record.method = "views.update"
        record.updates += 1
        self._view_log.append(copy.deepcopy(record))
        return self._view_response(record)

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id")
        if not user_id:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing user_id"]})
        view = validate_view(args.get("view"))
        if view.get("type") != "home":
            raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] view type must be home"]})
        return self._store_view("views.publish", view, user_id=str(user_id))

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if not group or group not in self.usergroup_members:
            raise ApiError("no_such_subteam")
        return {"users": list(self.usergroup_members[group])}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user") or "")
        if user_id[:1] not in ("U", "W") or len(user_id) < 3:
            raise ApiError("user_not_found")
        given = copy.deepcopy(self.users.get(user_id, {}))
        name = given.get("name", user_id.lower())
        profile = {
            "display_name": name,
            "real_name": given.get("real_name", name),
            **given.get("profile", {}),
        }
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "real_name": profile["real_name"],
            "deleted": False,
            "is_bot": False,
            "tz": "UTC",
            **given,
            "profile": profile,
        }
        return {"user": user}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(args.get("channel") or "")
        if channel_id[:1] not in ("C", "G", "D"):
            raise ApiError("channel_not_found")
        channel = {
            "id": channel_id,
            "name": channel_id.lower(),
            "is_channel": channel_id.startswith("C"),
            "is_group": channel_id.startswith("G"),
            "is_im": channel_id.startswith("D"),
            "is_private": channel_id[:1] in ("G", "D"),
            "is_archived": False,
            "is_member": True,
            **copy.deepcopy(self.channels.get(channel_id, {})),
        }
        return {"channel": channel}


_HANDLERS: dict[str, Callable[[WebApiMethods, dict[str, Any]], dict[str, Any]]] = {
    "apps.connections.open": WebApiMethods._apps_connections_open,
    "auth.test": WebApiMethods._auth_test,
    "chat.postMessage": WebApiMethods._chat_post_message,
    "chat.update": WebApiMethods._chat_update,
    "chat.delete": WebApiMethods._chat_delete,
    "chat.postEphemeral": WebApiMethods._chat_post_ephemeral,
    "chat.getPermalink": WebApiMethods._chat_get_permalink,
    "views.open": WebApiMethods._views_open,
    "views.push": WebApiMethods._views_push,
    "views.update": WebApiMethods._views_update,
    "views.publish": WebApiMethods._views_publish,
    "usergroups.users.list": WebApiMethods._usergroups_users_list,
    "users.info": WebApiMethods._users_info,
    "conversations.info": WebApiMethods._conversations_info,
    "conversations.history": WebApiMethods._conversations_history,
}


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))
