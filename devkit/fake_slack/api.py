"""The fake Slack server: lifecycle on loopback, failure injection, response_urls, and the HTTP entry that records
every call. The Web API methods themselves live in `methods`; what tests read of the state (calls, messages,
views, directory lookups) in `inspection`.

Thread-safe: every state change and read happens under one re-entrant lock; waiters are woken on each call.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from devkit.fake_slack.inspection import Inspection
from devkit.fake_slack.methods import WebApiMethods
from devkit.fake_slack.records import (
    RESPONSE_URL_METHOD,
    ApiError,
    Failure,
    FakeEphemeral,
    FakeMessage,
    FakeView,
    ResponseUrl,
    SlackCall,
)
from devkit.fake_slack.requests import bearer_token, parse_args, read_body
from devkit.wsgi_server import RunningServer, start_wsgi_in_thread

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)


class FakeSlack(Inspection, WebApiMethods):
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
        self._response_urls: dict[str, ResponseUrl] = {}
        self._failures: dict[str, list[Failure]] = {}
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
            self._response_urls[url] = ResponseUrl(
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
            self._failures.setdefault(method, []).append(Failure(status, error, retry_after, times))

    def _take_failure(self, method: str) -> Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    # -- HTTP ------------------------------------------------------------------------------------------------

    def _wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        body = read_body(environ)
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
            args = parse_args(environ, body)
            in_header = str(environ.get("HTTP_AUTHORIZATION", "")).lower().startswith("bearer ")
            token = bearer_token(environ, args)
            with self._lock:
                failure = self._take_failure(method)
                if failure is not None:
                    status = failure.status
                    if failure.retry_after is not None:
                        headers["Retry-After"] = str(failure.retry_after)
                    raise ApiError(failure.error or "fatal_error")
                self._check_token(method, token, in_header)
                result = self._dispatch(method, args)
            response: dict[str, Any] = {"ok": True, **result}
        except ApiError as exc:
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
            args = parse_args(environ, body)
        except (ApiError, ValueError, UnicodeDecodeError):
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
