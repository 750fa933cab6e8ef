"""Slack's Web API and response_url endpoint, faked on loopback for tests, the local shell and benchmarks.

Point `slack_sdk.WebClient(base_url=fake.api_url)` (or SLACK_API_URL) at a started `FakeSlack` and the bot
talks to it exactly as it talks to Slack: same HTTP shapes, same `{"ok": false, "error": ...}` answers,
429s with Retry-After when asked. Every call is recorded, and the message/ephemeral/view state it implies
is kept, so a test can assert what a user would see ("the approval message now says Approved") and what
Slack received.

Fidelity choices worth knowing:
- Only the bot token is accepted; anything else answers `invalid_auth` (missing token: `not_authed`). The
  app-level token (`xapp-…`) is accepted by `apps.connections.open` only, and only in the Authorization header;
  each token used for the other's methods answers `not_allowed_token_type`, as on Slack.
- `apps.connections.open` answers with a URL of the attached fake Socket Mode server (`attach_socket_mode`);
  without one it answers `access_denied`.
- Posting to a user id (U…/W…) lands in that user's DM channel "D…" and the answer says so, as on Slack; a
  bot that then updates with the user id instead of the returned channel gets `message_not_found`.
- Block Kit is lightly validated (block count, duplicate block_id, modal title length, value lengths): the
  limits that real Slack enforces and that are easy to trip silently.
- `users.info` answers any well-formed user id with a made-up profile unless `users` has an entry for it.
- It is also the workspace directory `SlackDriver` encodes typed `@name`/`#name` with (`user_id`, `channel_id`,
  `usergroup_id`): only users and channels in `users`/`channels` (by their "name") and user groups in
  `usergroup_handles` exist there, as only existing ones become mentions in Slack.
- A channel registered in `channels` with `"is_member": False` is one the bot has not joined: posting there
  answers `not_in_channel`, as Slack does for a bot with only `chat:write`.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from bot.devtools.wsgi_server import RunningServer, start_wsgi_in_thread

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

RESPONSE_URL_METHOD = "response_url"
# Slack's documented response_url limits: usable 5 times within 30 minutes.
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60

# Methods that take the app-level token instead of the bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
# Form fields WebClient serialises to JSON strings; decoded so `args[...]` is always the structure.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "unfurls")
# Block Kit limits Slack enforces (https://api.slack.com/reference/block-kit).
_MAX_MESSAGE_BLOCKS = 50
_MAX_VIEW_BLOCKS = 100
_MAX_ID_LENGTH = 255
_MAX_BUTTON_VALUE = 2000
_MAX_SECTION_TEXT = 3000
_MAX_MESSAGE_TEXT = 40000
_MAX_MODAL_TITLE = 24
_MAX_PRIVATE_METADATA = 3000

_TS_BASE_SECONDS = 1_700_000_000


@dataclass
class SlackCall:
    """One request Slack received. `method` is the API method, or "response_url" (URL in `args["_url"]`)."""

    method: str
    args: dict[str, Any]
    token: str | None = field(repr=False)
    at: float
    status: int = 200  # the HTTP status the fake answered with
    error: str | None = None  # the Slack error it answered with, if any (e.g. "invalid_auth")

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass
class FakeMessage:
    """A channel message as users currently see it (updates applied)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    updates: int
    user: str | None
    deleted: bool = False

    @property
    def visible_text(self) -> str:
        """The message's text plus every text in its blocks, newline-joined: what a reader sees."""
        parts = [self.text] if self.text else []
        block_text = blocks_text(self.blocks)
        if block_text:
            parts.append(block_text)
        return "\n".join(parts)

    def as_payload(self) -> dict[str, Any]:
        """The message as Slack embeds it in an interaction payload's `message` field."""
        payload: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "text": self.text,
            "blocks": copy.deepcopy(self.blocks),
            "user": self.user,
            "channel": self.channel,
        }
        if self.thread_ts:
            payload["thread_ts"] = self.thread_ts
        return payload


@dataclass
class FakeEphemeral:
    """A message only `user` sees: from chat.postEphemeral or an ephemeral response_url post."""

    channel: str | None
    user: str | None
    text: str
    blocks: list[dict[str, Any]]
    source: str  # "chat.postEphemeral" or "response_url"
    ts: str | None = None
    thread_ts: str | None = None
    replace_original: bool = False
    response_url: str | None = None

    @property
    def visible_text(self) -> str:
        parts = [self.text] if self.text else []
        block_text = blocks_text(self.blocks)
        if block_text:
            parts.append(block_text)
        return "\n".join(parts)


@dataclass
class FakeView:
    """A modal or Home tab as last opened/pushed/updated/published."""

    view_id: str
    method: str  # the views.* method that last set it
    view: dict[str, Any]
    user_id: str | None = None
    trigger_id: str | None = None
    updates: int = 0


@dataclass
class _ResponseUrl:
    url: str
    created_at: float
    channel: str | None
    user_id: str | None
    message_channel: str | None
    message_ts: str | None
    uses: int = 0
    expired: bool = False


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: int | None
    remaining: int


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


# ------------------------------------------------------------------------------------------------------------
# Block helpers, shared by tests and the shell.


def _walk_elements(blocks: Iterable[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (block_id, interactive element) for every element in actions blocks and section accessories."""
    for index, block in enumerate(blocks):
        block_id = str(block.get("block_id", f"block-{index}"))
        for element in block.get("elements", []) or []:
            if isinstance(element, dict) and "action_id" in element:
                yield block_id, element
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and "action_id" in accessory:
            yield block_id, accessory


def _element_label(element: dict[str, Any]) -> str:
    text = element.get("text")
    if isinstance(text, dict):
        return str(text.get("text", ""))
    return str(text or "")


def find_action(blocks: Iterable[dict[str, Any]], text_or_action_id: str) -> tuple[str, dict[str, Any]]:
    """Find the interactive element whose action_id or visible label equals `text_or_action_id`.

    Returns (block_id, element). Raises AssertionError listing what is there, so a failing test says why.
    """
    blocks = list(blocks)
    found = list(_walk_elements(blocks))
    for block_id, element in found:
        if element.get("action_id") == text_or_action_id or _element_label(element) == text_or_action_id:
            return block_id, element
    available = [f"{_element_label(e)!r} ({e.get('action_id')})" for _, e in found]
    raise AssertionError(f"no element {text_or_action_id!r} in blocks; available: {available or 'none'}")


def find_button(blocks: Iterable[dict[str, Any]], text_or_action_id: str) -> dict[str, Any]:
    """The button (or other element) labelled or identified by `text_or_action_id`."""
    return find_action(blocks, text_or_action_id)[1]


def _texts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str):
            yield node["text"]
            return
        for key, value in node.items():
            if key in ("text", "fields", "elements", "accessory", "title", "label", "placeholder", "options"):
                yield from _texts(value)
            elif key == "type" and value == "text" and isinstance(node.get("text"), str):
                yield node["text"]
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def blocks_text(blocks: Iterable[dict[str, Any]]) -> str:
    """All human-visible text in `blocks` (sections, fields, context, buttons, rich text), newline-joined."""
    lines: list[str] = []
    for block in blocks:
        lines.extend(t for t in _texts(block) if t)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------
# Request parsing.


def _read_body(environ: WSGIEnvironment) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            fields[str(name)] = payload
        else:
            fields[str(name)] = payload.decode("utf-8", errors="replace")
    return fields


def _parse_args(environ: WSGIEnvironment, body: bytes) -> dict[str, Any]:
    """Merge query string and body (JSON, form or multipart) into one args dict, like Slack does."""
    args: dict[str, Any] = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    content_type = environ.get("CONTENT_TYPE", "") or ""
    if body:
        if content_type.startswith("application/json"):
            decoded = json.loads(body.decode("utf-8"))
            if not isinstance(decoded, dict):
                raise _ApiError("invalid_json")
            args.update(decoded)
        elif content_type.startswith("multipart/form-data"):
            args.update(_parse_multipart(content_type, body))
        else:
            args.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for name in _JSON_FIELDS:
        value = args.get(name)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                args[name] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise _ApiError("invalid_blocks" if name == "blocks" else "invalid_arguments") from exc
    return args


def _bearer_token(environ: WSGIEnvironment, args: dict[str, Any]) -> str | None:
    # Slack still accepts a `token` argument in the body; older clients send it that way. Popped either way, so
    # recorded args never hold a token (slack_sdk sends the app-level token in both places).
    token = args.pop("token", None)
    header = environ.get("HTTP_AUTHORIZATION", "") or ""
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return str(token) if token else None


# ------------------------------------------------------------------------------------------------------------
# Block Kit validation: only the limits that real Slack rejects and a bot can plausibly hit.


def _validate_blocks(blocks: Any, max_blocks: int) -> None:
    if not isinstance(blocks, list):
        raise _ApiError("invalid_blocks", errors=["blocks must be a list"])
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"no more than {max_blocks} items allowed [json-pointer:/blocks]")
    seen_block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            problems.append(f"block must be an object with a type [json-pointer:/blocks/{index}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen_block_ids:
                problems.append(f"duplicate block_id {block_id!r} [json-pointer:/blocks/{index}/block_id]")
            seen_block_ids.add(block_id)
            if len(str(block_id)) > _MAX_ID_LENGTH:
                problems.append(f"block_id too long [json-pointer:/blocks/{index}/block_id]")
        text = block.get("text")
        if block.get("type") == "section" and isinstance(text, dict) and len(text.get("text", "")) > _MAX_SECTION_TEXT:
            problems.append(f"must be less than {_MAX_SECTION_TEXT} characters [json-pointer:/blocks/{index}/text]")
        action_ids: set[str] = set()
        for element in block.get("elements", []) or []:
            if not isinstance(element, dict) or "action_id" not in element:
                continue
            action_id = str(element["action_id"])
            if action_id in action_ids:
                problems.append(f"duplicate action_id {action_id!r} [json-pointer:/blocks/{index}]")
            action_ids.add(action_id)
            if len(action_id) > _MAX_ID_LENGTH:
                problems.append(f"action_id too long [json-pointer:/blocks/{index}]")
            if len(str(element.get("value", ""))) > _MAX_BUTTON_VALUE:
                problems.append(f"value too long [json-pointer:/blocks/{index}]")
    if problems:
        raise _ApiError("invalid_blocks", errors=problems)


def _validate_view(view: Any) -> dict[str, Any]:
    if not isinstance(view, dict) or "type" not in view:
        raise _ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required view"]})
    messages: list[str] = []
    title = view.get("title")
    if view["type"] == "modal":
        if not isinstance(title, dict) or not title.get("text"):
            messages.append("[ERROR] missing required field: title [json-pointer:/view/title]")
        elif len(title["text"]) > _MAX_MODAL_TITLE:
            messages.append(
                f"[ERROR] must be less than {_MAX_MODAL_TITLE + 1} characters [json-pointer:/view/title/text]"
            )
    if len(str(view.get("private_metadata", ""))) > _MAX_PRIVATE_METADATA:
        messages.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > _MAX_ID_LENGTH:
        messages.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    if messages:
        raise _ApiError("invalid_arguments", response_metadata={"messages": messages})
    _validate_blocks(view.get("blocks", []), _MAX_VIEW_BLOCKS)
    return view


def _message_content(args: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = args.get("text")
    blocks = args.get("blocks")
    if blocks is not None:
        _validate_blocks(blocks, _MAX_MESSAGE_BLOCKS)
    if text is not None and len(str(text)) > _MAX_MESSAGE_TEXT:
        raise _ApiError("msg_too_long")
    return (str(text) if text is not None else ""), (blocks or [])


# ------------------------------------------------------------------------------------------------------------


class FakeSlack:
    """Slack's Web API on 127.0.0.1, with recorded calls and the message state they produce.

    Thread-safe: the bot's worker threads, the HTTP server threads and the test thread all touch it.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0SNAPBOT",
        bot_user_id: str = "U0SNAPBOT",
        bot_id: str = "B0SNAPBOT",
        api_app_id: str = "A0SNAPBOT",
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-1-A0SNAPBOT-1-test-token",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.api_app_id = api_app_id
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_domain = "snapbot-test"
        self._clock = clock
        # Directory state tests may set before or during a run (read under the lock).
        self.usergroup_members: dict[str, list[str]] = {}
        self.usergroup_handles: dict[str, str] = {}  # S… id → handle typed as @handle
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.on_call: Callable[[SlackCall], None] | None = None
        self._socket_mode_url: Callable[[], str] | None = None

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._calls: list[SlackCall] = []
        self._messages: dict[str, dict[str, FakeMessage]] = {}
        self._ephemerals: list[FakeEphemeral] = []
        self._views: dict[str, FakeView] = {}
        self._view_log: list[FakeView] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._ts_counter = itertools.count(1)
        self._server: RunningServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        if self._server is None:
            self._server = start_wsgi_in_thread(self._wsgi_app)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started; call start() or use it as a context manager")
        return self._server.url

    @property
    def api_url(self) -> str:
        """What WebClient(base_url=...) / SLACK_API_URL should be: "http://127.0.0.1:PORT/api/"."""
        return f"{self.base_url}/api/"

    # -- response_url ----------------------------------------------------------------------------------------

    def new_response_url(
        self,
        *,
        message_channel: str | None = None,
        message_ts: str | None = None,
        channel: str | None = None,
        user_id: str | None = None,
    ) -> str:
        """A response_url as Slack hands out with a command or interaction.

        `message_channel`/`message_ts`: the message a button was in, so `replace_original`/`delete_original`
        act on it. `channel`: where `in_channel` responses appear (defaults to message_channel). `user_id`:
        who sees ephemeral responses.
        """
        url = f"{self.base_url}/response/{uuid.uuid4().hex}"
        with self._lock:
            self._response_urls[url] = _ResponseUrl(
                url=url,
                created_at=self._clock(),
                channel=channel or message_channel,
                user_id=user_id,
                message_channel=message_channel,
                message_ts=message_ts,
            )
        return url

    def expire_response_url(self, url: str) -> None:
        """From now on posts to `url` answer 404 "expired_url", as Slack does after 30 minutes."""
        with self._lock:
            if url not in self._response_urls:
                raise KeyError(f"not a response_url of this FakeSlack: {url}")
            self._response_urls[url].expired = True

    # -- Socket Mode -----------------------------------------------------------------------------------------

    def attach_socket_mode(self, issue_url: Callable[[], str] | None) -> None:
        """From now on `apps.connections.open` answers `{"url": issue_url()}` (None detaches: `access_denied`)."""
        with self._lock:
            self._socket_mode_url = issue_url

    # -- failure injection -----------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls to `method` fail.

        status=429 answers {"ok": false, "error": "ratelimited"} with Retry-After (default 1 s); status=5xx
        answers {"ok": false, "error": "fatal_error"}; status=200 with `error` answers {"ok": false, "error":
        error}, e.g. "invalid_auth". `method` may be "response_url".
        """
        if status == 200 and error is None:
            raise ValueError("fail_next with status 200 needs an error, e.g. error='invalid_auth'")
        if status == 429 and retry_after is None:
            retry_after = 1
        if error is None:
            error = "ratelimited" if status == 429 else "fatal_error"
        with self._lock:
            self._failures.setdefault(method, []).append(_Failure(status, error, retry_after, times))

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    # -- inspection ------------------------------------------------------------------------------------------

    @property
    def calls(self) -> list[SlackCall]:
        """A snapshot of every call so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        where: Callable[[SlackCall], bool] | None = None,
    ) -> list[SlackCall]:
        """Block until at least `count` calls to `method` (matching `where`) have arrived; return them all.

        Raises AssertionError describing what did arrive if the deadline passes first.
        """
        deadline = time.monotonic() + timeout

        def matching() -> list[SlackCall]:
            return [c for c in self._calls if c.method == method and (where is None or where(c))]

        with self._changed:
            while True:
                found = matching()
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            arrived = [_describe_call(c) for c in self._calls]
        condition = " matching the filter" if where else ""
        raise AssertionError(
            f"expected {count} call(s) to {method}{condition} within {timeout}s, got {len(found)}; "
            f"calls that arrived ({len(arrived)}): {arrived[-20:]}"
        )

    def messages(self, channel: str) -> list[FakeMessage]:
        """Messages in `channel` in post order, updates applied, deleted ones left out."""
        with self._lock:
            return [copy.deepcopy(m) for m in self._messages.get(channel, {}).values() if not m.deleted]

    def message(self, channel: str, ts: str) -> FakeMessage:
        with self._lock:
            try:
                return copy.deepcopy(self._messages[channel][ts])
            except KeyError:
                raise KeyError(f"no message {ts} in {channel}") from None

    @property
    def ephemerals(self) -> list[FakeEphemeral]:
        with self._lock:
            return copy.deepcopy(self._ephemerals)

    def ephemerals_for(self, user_id: str) -> list[FakeEphemeral]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals if e.user == user_id]

    @property
    def views(self) -> list[FakeView]:
        """Every view as it was opened/pushed/updated/published, in call order."""
        with self._lock:
            return copy.deepcopy(self._view_log)

    def view(self, view_id: str) -> FakeView:
        """The current state of one view."""
        with self._lock:
            return copy.deepcopy(self._views[view_id])

    def home_view(self, user_id: str) -> FakeView | None:
        """The Home tab last published for `user_id`, if any."""
        with self._lock:
            for view in reversed(self._view_log):
                if view.method == "views.publish" and view.user_id == user_id:
                    return copy.deepcopy(self._views[view.view_id])
        return None

    def dm_channel(self, user_id: str) -> str:
        """The DM channel id messages posted to `user_id` land in."""
        return "D" + user_id[1:]

    # -- directory (typed names → ids) ---------------------------------------------------------------------------

    def user_id(self, name: str) -> str | None:
        """The id of the user called `name` in `users`, if any."""
        return self._find(self.users, name)

    def channel_id(self, name: str) -> str | None:
        """The id of the channel called `name` in `channels`, if any."""
        return self._find(self.channels, name)

    def usergroup_id(self, handle: str) -> str | None:
        """The id of the user group with this handle in `usergroup_handles`, if any."""
        with self._lock:
            handles = dict(self.usergroup_handles)
        return next((gid for gid, known in handles.items() if known.lower() == handle.lower()), None)

    def _find(self, table: dict[str, dict[str, Any]], name: str) -> str | None:
        with self._lock:
            entries = list(table.items())
        wanted = name.lower()
        return next((key for key, entry in entries if str(entry.get("name", "")).lower() == wanted), None)

    def reset(self) -> None:
        """Forget calls, messages, views and pending failures (directory data stays)."""
        with self._lock:
            self._calls.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._views.clear()
            self._view_log.clear()
            self._failures.clear()

    # -- HTTP ------------------------------------------------------------------------------------------------

    def _wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        body = _read_body(environ)
        if environ.get("REQUEST_METHOD") not in ("POST", "GET"):
            status, headers, payload = 405, {"Content-Type": "text/plain"}, b"method_not_allowed"
        elif path.startswith("/api/"):
            status, headers, payload = self._api_request(path[len("/api/") :], environ, body)
        elif path.startswith("/response/"):
            status, headers, payload = self._response_url_request(path, environ, body)
        else:
            status, headers, payload = 404, {"Content-Type": "text/plain"}, b"not_found"
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests"}
        headers["Content-Length"] = str(len(payload))
        start_response(f"{status} {reason.get(status, 'Error')}", list(headers.items()))
        return [payload]

    def _record(self, call: SlackCall) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()
        observer = self.on_call
        if observer is not None:
            try:
                observer(call)
            except Exception:
                # An observer bug (e.g. in the shell's renderer) must not become a Slack API failure.
                log.exception("FakeSlack on_call observer failed for %s", call.method)

    def _api_request(self, method: str, environ: WSGIEnvironment, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        status = 200
        token: str | None = None
        args: dict[str, Any] = {}
        try:
            args = _parse_args(environ, body)
            in_header = str(environ.get("HTTP_AUTHORIZATION", "")).lower().startswith("bearer ")
            token = _bearer_token(environ, args)
            with self._lock:
                failure = self._take_failure(method)
                if failure is not None:
                    status = failure.status
                    if failure.retry_after is not None:
                        headers["Retry-After"] = str(failure.retry_after)
                    raise _ApiError(failure.error or "fatal_error")
                self._check_token(method, token, in_header)
                result = self._dispatch(method, args)
            response: dict[str, Any] = {"ok": True, **result}
        except _ApiError as exc:
            response = {"ok": False, "error": exc.error, **exc.extra}
        except (ValueError, UnicodeDecodeError):
            response = {"ok": False, "error": "invalid_form_data"}
        self._record(
            SlackCall(
                method=method,
                args=args,
                token=token,
                at=self._clock(),
                status=status,
                error=None if response["ok"] else str(response["error"]),
            )
        )
        return status, headers, json.dumps(response).encode("utf-8")

    def _response_url_request(
        self, path: str, environ: WSGIEnvironment, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        url = f"{self.base_url}{path}"
        status, error = 200, None
        try:
            args = _parse_args(environ, body)
        except (_ApiError, ValueError, UnicodeDecodeError):
            args, status, error = {}, 400, "invalid_payload"
        # Slack's Block Kit Builder style clients post `payload=<json>`; unwrap it.
        if isinstance(args.get("payload"), str):
            try:
                args = {**json.loads(args["payload"])}
            except json.JSONDecodeError:
                status, error = 400, "invalid_payload"
        args["_url"] = url
        if error is None:
            with self._lock:
                status, error = self._apply_response_url(url, args)
        self._record(
            SlackCall(
                method=RESPONSE_URL_METHOD,
                args=args,
                token=None,
                at=self._clock(),
                status=status,
                error=error,
            )
        )
        payload = b"ok" if error is None else error.encode()
        return status, {"Content-Type": "text/plain; charset=utf-8"}, payload

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
            text, blocks = _message_content(args)
        except _ApiError as exc:
            return 400, exc.error
        entry.uses += 1

        original = None
        if entry.message_channel and entry.message_ts:
            original = self._messages.get(entry.message_channel, {}).get(entry.message_ts)
        if _truthy(args.get("delete_original")):
            if original is not None:
                original.deleted = True
            return 200, None
        if _truthy(args.get("replace_original")) and original is not None:
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
                replace_original=_truthy(args.get("replace_original")),
                response_url=url,
            )
        )
        return 200, None

    def _check_token(self, method: str, token: str | None, in_header: bool) -> None:
        if token is None:
            raise _ApiError("not_authed")
        wants_app_token = method in _APP_TOKEN_METHODS
        expected, other = (self.app_token, self.bot_token) if wants_app_token else (self.bot_token, self.app_token)
        if token == other:
            raise _ApiError("not_allowed_token_type")
        if token != expected:
            raise _ApiError("invalid_auth")
        if wants_app_token and not in_header:
            # Slack's docs: the app-level token goes in the Authorization header; as a POST parameter it fails.
            raise _ApiError("not_authed")

    # -- Web API methods (called with the lock held) ---------------------------------------------------------

    def _dispatch(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = _HANDLERS.get(method)
        return handler(self, args) if handler is not None else {}

    def _next_ts(self) -> str:
        n = next(self._ts_counter)
        return f"{_TS_BASE_SECONDS + n}.{n * 100 % 1_000_000:06d}"

    def _resolve_channel(self, channel: Any) -> str:
        if not channel:
            raise _ApiError("channel_not_found")
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
            raise _ApiError("message_not_found")
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
            raise _ApiError("access_denied")
        return {"url": self._socket_mode_url()}

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        if self.channels.get(channel, {}).get("is_member") is False:
            raise _ApiError("not_in_channel")
        text, blocks = _message_content(args)
        if not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
        message = self._post(channel, text, blocks, args.get("thread_ts"))
        return {
            "channel": channel,
            "ts": message.ts,
            "message": message.as_payload() | {"bot_id": self.bot_id},
        }

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find_message(args.get("channel"), args.get("ts"))
        text, blocks = _message_content(args)
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
            raise _ApiError("user_not_in_channel")
        text, blocks = _message_content(args)
        if not text and not blocks and not args.get("attachments"):
            raise _ApiError("no_text")
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
            raise _ApiError("message_not_found")
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
            raise _ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing trigger_id"]})
        view = _validate_view(args.get("view"))
        return self._store_view("views.open", view, trigger_id=str(args["trigger_id"]))

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            raise _ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing trigger_id"]})
        view = _validate_view(args.get("view"))
        return self._store_view("views.push", view, trigger_id=str(args["trigger_id"]))

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _validate_view(args.get("view"))
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        record = self._views.get(str(view_id)) if view_id else None
        if record is None and external_id:
            record = next((v for v in self._views.values() if v.view.get("external_id") == external_id), None)
        if record is None:
            raise _ApiError("not_found")
        record.view = view
        record.method = "views.update"
        record.updates += 1
        self._view_log.append(copy.deepcopy(record))
        return self._view_response(record)

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id")
        if not user_id:
            raise _ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing user_id"]})
        view = _validate_view(args.get("view"))
        if view.get("type") != "home":
            raise _ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] view type must be home"]})
        return self._store_view("views.publish", view, user_id=str(user_id))

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if not group or group not in self.usergroup_members:
            raise _ApiError("no_such_subteam")
        return {"users": list(self.usergroup_members[group])}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user") or "")
        if user_id[:1] not in ("U", "W") or len(user_id) < 3:
            raise _ApiError("user_not_found")
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
            raise _ApiError("channel_not_found")
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


_HANDLERS: dict[str, Callable[[FakeSlack, dict[str, Any]], dict[str, Any]]] = {
    "apps.connections.open": FakeSlack._apps_connections_open,
    "auth.test": FakeSlack._auth_test,
    "chat.postMessage": FakeSlack._chat_post_message,
    "chat.update": FakeSlack._chat_update,
    "chat.delete": FakeSlack._chat_delete,
    "chat.postEphemeral": FakeSlack._chat_post_ephemeral,
    "chat.getPermalink": FakeSlack._chat_get_permalink,
    "views.open": FakeSlack._views_open,
    "views.push": FakeSlack._views_push,
    "views.update": FakeSlack._views_update,
    "views.publish": FakeSlack._views_publish,
    "usergroups.users.list": FakeSlack._usergroups_users_list,
    "users.info": FakeSlack._users_info,
    "conversations.info": FakeSlack._conversations_info,
    "conversations.history": FakeSlack._conversations_history,
}


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def _describe_call(call: SlackCall) -> str:
    keys = {k: v for k, v in call.args.items() if k in ("channel", "ts", "text", "user", "_url", "trigger_id")}
    outcome = "ok" if call.ok else f"{call.status} {call.error}"
    return f"{call.method}({keys}) -> {outcome}"
