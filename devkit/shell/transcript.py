"""The transcript: what the bot says in Slack, rendered on the terminal as it arrives. FakeSlack's calls are read
in order (from a watcher thread while the prompt waits) and shown once each: posts, updates, ephemerals,
response_url answers and Home tabs, with numbered buttons the user can press. Lookups a user would never see
(`auth.test`, `users.info`, ...) are not shown, nor is an update that leaves a message looking as it did (a
tick's refresh and a tracking event may both update a card with the same content): only changes are news.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import Any

from bot.slack.wording import render
from devkit.fake_slack import RESPONSE_URL_METHOD, SlackCall
from devkit.shell.forms import EndOfInput
from devkit.shell.render import (
    Style,
    framed,
    mrkdwn,
    render_blocks,
)
from devkit.shell.world import BOT_NAME

log = logging.getLogger(__name__)

# Requests the shell never shows: lookups the bot makes, not things a user would see.
_SILENT_METHODS = frozenset(
    {"auth.test", "users.info", "conversations.info", "chat.getPermalink", "usergroups.users.list"}
)


@dataclass(frozen=True)
class Source:
    """Where a shown button lives: a channel message, an ephemeral message, or a Home tab."""

    kind: str  # "message" | "ephemeral" | "home"
    channel: str | None = None
    ts: str | None = None
    user: str | None = None


@dataclass(frozen=True)
class UrlInfo:
    """What the shell knows about a response_url it handed out, to render what is posted to it."""

    user: str
    channel: str | None
    message_channel: str | None = None
    message_ts: str | None = None


class Transcript:
    """Rendering FakeSlack's record of calls for `Shell`."""

    def _banner(self) -> None:
        style = self.style
        lines = [style.bold("snapshot-bot shell") + " — the real bot, with Slack played by this terminal."]
        if self.real_vps:
            url = self.settings.vps_api_url
            lines.append(style.loud(f" !!! REAL VPS.org account ({url}) !!! "))
            lines.append(style.red("Create, delete and restore act on real servers and real data."))
        else:
            delay = self.simulator.completion_delay if self.simulator else 0
            lines.append(f"VPS.org: the built-in simulator (sample servers; snapshots take ~{delay:g} s).")
        lines.append(f"Database: {self._database_note}.")
        lines.append(f"Log: {self.log_path} (the bot's log lines; errors are also noted here).")
        access = mrkdwn(render(self._running().core.access.describe()), style, self.names)
        lines.append(style.dim(access))
        lines.append(
            f"You are @{self.user_name} in #{self._channels.get(self.channel, self.channel)}. "
            "Try /snapshot list; /as bob switches person; /help for more."
        )
        if self.interactive:
            self._write_lines(lines)
        else:  # scripted: keep stdout for the conversation, but never hide the real-account warning
            for line in lines:
                print(line, file=sys.stderr)

    def _watch(self) -> None:
        """Interactive only: show what arrives while the user sits at the prompt (a snapshot completing)."""
        while not self._stopping.is_set():
            self._activity.wait()
            self._activity.clear()
            if self._stopping.is_set():
                return
            if self._at_prompt:
                self._drain()

    def _drain(self) -> bool:
        """Render every FakeSlack call not shown yet, in arrival order. True if anything was shown."""
        if self.fake is None:
            return False
        with self._drain_lock:
            calls = self.fake.calls
            new = calls[self._cursor :]
            self._cursor = len(calls)
            shown = False
            for call in new:
                try:
                    shown = self._render_call(call) or shown
                except EndOfInput:
                    raise
                except Exception:  # a rendering bug must not end the session
                    log.exception("could not render %s", call.method)
            for note in self._take_notes():
                self._write(self.style.red(f"(error logged by the bot: {note} — details in {self.log_path})"))
                shown = True
            return shown

    def _render_call(self, call: SlackCall) -> bool:
        method, args = call.method, call.args
        if method in _SILENT_METHODS:
            return False
        if not call.ok:
            self._write(self.style.dim(f"(Slack answered {call.error or call.status} to {method})"))
            return True
        if method == "chat.postMessage":
            return self._render_post(args)
        if method == "chat.update":
            return self._render_update(args)
        if method == "chat.postEphemeral":
            user = str(args.get("user") or "")
            source = Source("ephemeral", str(args.get("channel") or self.channel), user=user)
            text = str(args.get("text") or "")
            self._show(self._ephemeral_heading(user), args.get("blocks") or [], text, source)
            return True
        if method == "chat.delete":
            self._write(self.style.dim(f"(a message in {self._where(str(args.get('channel')))} was deleted)"))
            return True
        if method == RESPONSE_URL_METHOD:
            return self._render_response_url(args)
        if method in ("views.open", "views.push"):
            view = args.get("view")
            if isinstance(view, dict):
                if self._at_prompt:  # the user is typing: ask when they press Enter
                    self._pending_forms.append(view)
                    self._write(self.style.dim("(a form opened — press Enter to fill it in)"))
                else:
                    self._fill_form(view)
            return True
        if method == "views.publish":
            user = str(args.get("user_id") or "")
            view = args.get("view") or {}
            heading = self.style.bold(f"App Home of @{self.names.user(user)}")
            self._show(heading, view.get("blocks") or [], "", Source("home", user=user))
            return True
        return False

    def _render_post(self, args: dict[str, Any]) -> bool:
        assert self.fake is not None
        channel = self._resolve_channel(str(args.get("channel") or ""))
        text = str(args.get("text") or "")
        ts = self._claim(channel, text)
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        source = Source("message", channel, ts) if ts else Source("message", channel)
        if thread_ts:
            parent = ""
            with contextlib.suppress(KeyError):
                parent = self.fake.message(channel, thread_ts).text
            about = mrkdwn(parent, Style(), self.names).split("\n")[0]
            about = about if len(about) <= 50 else about[:49] + "…"
            heading = f"{self._channel_heading(channel)} {self.style.dim('· reply in thread: ' + about)}"
            self._show(heading, args.get("blocks") or [], text, source, indent="    ")
        else:
            self._show(self._channel_heading(channel), args.get("blocks") or [], text, source)
        if ts:
            self._changed(channel, ts, args.get("blocks") or [], text)  # the baseline its updates compare with
        return True

    def _render_update(self, args: dict[str, Any]) -> bool:
        assert self.fake is not None
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        blocks = args.get("blocks")
        indent = ""
        try:
            current = self.fake.message(channel, ts)
        except KeyError:
            current = None
        if blocks is None:  # Slack keeps the old blocks when an update leaves them out
            blocks = current.blocks if current is not None else []
        if current is not None and current.thread_ts:
            indent = "    "
        text = str(args["text"]) if "text" in args else (current.text if current else "")
        if not self._changed(channel, ts, blocks, text):
            return False
        heading = f"{self._channel_heading(channel)} {self.style.yellow('· updated')}"
        self._show(heading, blocks, text, Source("message", channel, ts), indent=indent)
        return True

    def _render_response_url(self, args: dict[str, Any]) -> bool:
        info = self._urls.get(str(args.get("_url") or ""))
        user = info.user if info else self.user_id
        text = str(args.get("text") or "")
        blocks = args.get("blocks") or []
        on_message = info is not None and info.message_channel and info.message_ts
        if _truthy(args.get("delete_original")):
            what = "the message was deleted" if on_message else "dismissed"
            self._write(self.style.dim(f"({what})"))
            return True
        if _truthy(args.get("replace_original")):
            if info is not None and info.message_channel and info.message_ts:
                channel = info.message_channel
                if not self._changed(channel, info.message_ts, blocks, text):
                    return False
                heading = f"{self._channel_heading(channel)} {self.style.yellow('· updated')}"
                self._show(heading, blocks, text, Source("message", channel, info.message_ts))
            else:
                heading = f"{self._ephemeral_heading(user)} {self.style.yellow('· updated')}"
                channel = info.channel if info else self.channel
                self._show(heading, blocks, text, Source("ephemeral", channel, user=user))
            return True
        if args.get("response_type") == "in_channel" and info is not None and info.channel:
            ts = self._claim(info.channel, text)
            source = Source("message", info.channel, ts)
            self._show(self._channel_heading(info.channel), blocks, text, source)
            return True
        channel = info.channel if info else self.channel
        self._show(self._ephemeral_heading(user), blocks, text, Source("ephemeral", channel, user=user))
        return True

    def _changed(self, channel: str, ts: str, blocks: list[dict[str, Any]], text: str) -> bool:
        """Whether the message (channel, ts) would now read differently from when it was last shown; remembers it.

        Compared as rendered without colour and with fixed button numbers, so only what a reader sees counts."""
        looks = render_blocks(blocks, fallback_text=text, style=Style(), names=self.names, first_number=1).lines
        if self._last_shown.get((channel, ts)) == looks:
            return False
        self._last_shown[(channel, ts)] = looks
        return True

    def _claim(self, channel: str, text: str) -> str | None:
        """The ts of the message a post created: the first not yet shown with that text (else any unshown)."""
        assert self.fake is not None
        unclaimed = [m for m in self.fake.messages(channel) if (channel, m.ts) not in self._claimed]
        match = next((m for m in unclaimed if m.text == text), unclaimed[0] if unclaimed else None)
        if match is None:
            return None
        self._claimed.add((channel, match.ts))
        return match.ts

    def _resolve_channel(self, channel: str) -> str:
        assert self.fake is not None
        return self.fake.dm_channel(channel) if channel[:1] in ("U", "W") else channel

    def _where(self, channel: str) -> str:
        if channel.startswith("D"):
            return f"DM with @{self.names.user('U' + channel[1:])}"
        return "#" + self.names.channel(channel)

    def _channel_heading(self, channel: str) -> str:
        return f"{self.style.bold(self._where(channel))} {self.style.dim('· ' + BOT_NAME)}"

    def _ephemeral_heading(self, user: str) -> str:
        who = "you" if user == self.user_id else "@" + self.names.user(user)
        return f"{self.style.bold(BOT_NAME)} {self.style.dim('· only visible to ' + who)}"

    def _show(self, heading: str, blocks: list[dict[str, Any]], text: str, source: Source, *, indent: str = "") -> None:
        # Numbers restart at [1] with the first buttons shown after the user acts, and count on from there.
        first = 1 if self._renumber else max(self._buttons, default=0) + 1
        style, names = self.style, self.names
        rendered = render_blocks(blocks, fallback_text=text, style=style, names=names, first_number=first)
        if rendered.buttons:
            if self._renumber:
                self._buttons.clear()
                self._renumber = False
            for button in rendered.buttons:
                self._buttons[button.number] = (button, source)
        self._write_lines(framed(heading, rendered.lines, self.style, indent=indent))

    def _write(self, text: str) -> None:
        self._write_lines(text.split("\n"))

    def _write_lines(self, lines: list[str]) -> None:
        redraw = self.interactive and self._at_prompt
        out = "\n".join(lines) + "\n"
        if redraw:  # clear the prompt line, print, then put the prompt and what was typed back
            buffer = self._readline.get_line_buffer() if self._readline is not None else ""
            # Erasing is a terminal control, not a colour, but NO_COLOR users may want no escapes at all.
            blank = " " * (len(self._prompt_text) + len(buffer))
            erase = "\r\x1b[K" if self.style.color else f"\r{blank}\r"
            out = erase + out + self._prompt_text + buffer
        self._write_raw(out)

    def _write_raw(self, text: str) -> None:
        try:
            self.stdout.write(text)
        except UnicodeEncodeError:  # a terminal that can't show some character: show "?" rather than fail
            encoding = getattr(self.stdout, "encoding", None) or "ascii"
            self.stdout.write(text.encode(encoding, errors="replace").decode(encoding))
        self.stdout.flush()


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")
