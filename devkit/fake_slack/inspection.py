"""What tests see of the fake Slack: the recorded calls (and waiting for them), the messages, ephemerals and
views they produced, and the directory lookups from typed names to ids.

Rules this module keeps:
- Every read happens under `FakeSlack`'s lock and returns copies, so a test never sees (or changes) state that
  a bot thread is changing.
- `wait_for` blocks on the fake's condition (woken on each call) until enough matching calls arrived, and fails
  with a description of what did arrive; it never polls.
- `reset` forgets calls, messages, views and pending failures, never the directory.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from devkit.fake_slack.records import Failure, FakeEphemeral, FakeMessage, FakeView, SlackCall


class Inspection:
    """The inspection methods of `FakeSlack`, which provides the state declared here."""

    users: dict[str, dict[str, Any]]
    channels: dict[str, dict[str, Any]]
    usergroup_handles: dict[str, str]
    _lock: threading.RLock
    _changed: threading.Condition
    _calls: list[SlackCall]
    _messages: dict[str, dict[str, FakeMessage]]
    _ephemerals: list[FakeEphemeral]
    _views: dict[str, FakeView]
    _view_log: list[FakeView]
    _failures: dict[str, list[Failure]]

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

    def permalink_target(self, url: str) -> tuple[str, str] | None:
        """(channel, ts) of the message a `chat.getPermalink` link of this workspace points to, if it still exists:
        what Slack shows when someone follows the link (e.g. the App Home's "Open card")."""
        match = re.fullmatch(
            rf"https://{re.escape(self.team_domain)}\.slack\.com/archives/([A-Z0-9]+)/p(\d{{7,}})", url
        )
        if match is None:
            return None
        channel, digits = match.group(1), match.group(2)
        ts = f"{digits[:-6]}.{digits[-6:]}"  # Slack's ts has six digits after the dot; the link drops the dot
        with self._lock:
            message = self._messages.get(channel, {}).get(ts)
            return (channel, ts) if message is not None and not message.deleted else None

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


def _describe_call(call: SlackCall) -> str:
    keys = {k: v for k, v in call.args.items() if k in ("channel", "ts", "text", "user", "_url", "trigger_id")}
    outcome = "ok" if call.ok else f"{call.status} {call.error}"
    return f"{call.method}({keys}) -> {outcome}"
