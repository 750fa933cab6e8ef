"""The local shell: the whole bot in a terminal, with no Slack workspace and no VPS.org account.

It runs the production Bolt app and listeners unchanged. Each typed line becomes a signed Slack request sent
through the real WSGI app (`SlackDriver` + `wsgi_sender`), and the app's Web API calls land in an in-process
`FakeSlack`, whose record of calls is rendered here. There is no second code path for the bot's logic: what
works in the shell works in Slack, and the other way round.

VPS.org is the in-process simulator unless VPS_API_TOKEN is set (then it is the real account, with a loud
banner); the database is a throwaway SQLite file unless SHELL_DATABASE_URL says otherwise (never DATABASE_URL).

This module is the loop: read a line, turn it into a slash command, a button press or a shell command, send
it, and let the bot settle before the next prompt. The fake world is booted in `world`, questions are asked in
`forms`, what the bot says is rendered in `transcript`, and `/wait` waits in `waiting`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.config import Settings
from devkit.fake_slack import FakeSlack
from devkit.shell.forms import EndOfInput, FormsAndInput
from devkit.shell.render import (
    Button,
    Names,
    Style,
    confirm_question,
    is_yes,
)
from devkit.shell.terminal import own_terminal
from devkit.shell.transcript import Source, Transcript, UrlInfo
from devkit.shell.waiting import Waiting
from devkit.shell.world import (
    DEFAULT_COMPLETION_DELAY,
    DEFAULT_POLL_INTERVAL,
    DEMO_USERS,
    SHELL_CHANNEL,
    SHELL_CHANNEL_NAME,
    ShellWorld,
    user_id_for,
)
from devkit.simulator import VpsSimulator
from devkit.slack_driver import DriverResponse, SlackDriver

if TYPE_CHECKING:
    from bot.wiring import Bot

SETTLE_TIMEOUT = 30.0  # how long a line may keep the bot busy before the prompt comes back anyway
_PRESS = re.compile(r"^(?:click|press)?\s*\[?#?([0-9]{1,4})\]?$")  # ASCII digits, as everywhere in the bot


HELP = """\
Type what you would type in Slack:
  /snapshot list                  every server and its snapshots
  /snapshot create 12345 my-name  take a snapshot (/snapshot create alone opens the form)
  /snapshot delete 798            delete one (asks you to confirm)
  /snapshot restore 801           ask for a restore: someone else must approve it
  /snapshot audit                 who did what
  /snapshot help                  everything the bot understands
Shell commands:
  3   or   click 3                press button [3] of what was shown last
  /as bob                         act as someone else (alice and bob exist; any name works)
  /wait [seconds]                 wait (up to 60 s) for running work to end, and say how it went
  /home                           open the bot's App Home tab
  /help                           this help
  quit                            leave (Ctrl-D works too)"""


class Shell(ShellWorld, FormsAndInput, Transcript, Waiting):
    """One shell session. `with Shell(settings, ...) as shell: shell.run()`; `run_shell` does exactly that."""

    def __init__(
        self,
        settings: Settings,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        interactive: bool | None = None,
        simulator: VpsSimulator | None = None,
        completion_delay: float = DEFAULT_COMPLETION_DELAY,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        color: bool | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        self.settings = settings
        self.log_path = Path(log_path) if log_path is not None else None  # None: a new file in the temp dir
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.interactive = _isatty(self.stdin) if interactive is None else interactive
        if color is None:
            color = _isatty(self.stdout) and not os.environ.get("NO_COLOR")
        encoding = (getattr(self.stdout, "encoding", None) or "utf-8").lower()
        self.style = Style(color=color, emoji="utf" in encoding)
        # The real account only when the user configured a token and no simulator was handed in.
        self.real_vps = simulator is None and settings.vps_api_token is not None
        if not self.real_vps and simulator is None:
            simulator = VpsSimulator(completion_delay=completion_delay)
        self.simulator = simulator if not self.real_vps else None
        self.poll_interval = poll_interval
        self.channel = settings.allowed_channels[0] if settings.allowed_channels else SHELL_CHANNEL
        self.user_name = "alice"
        self.user_id = DEMO_USERS["alice"]

        self._users: dict[str, str] = {uid: name for name, uid in DEMO_USERS.items()}
        self._channels: dict[str, str] = {self.channel: SHELL_CHANNEL_NAME}
        if settings.approval_channel and settings.approval_channel != self.channel:
            self._channels[settings.approval_channel] = "approvals"
        if settings.notify_channel and settings.notify_channel not in self._channels:
            self._channels[settings.notify_channel] = "notifications"
        self.names = Names(users=self._users, channels=self._channels)

        self._buttons: dict[int, tuple[Button, Source]] = {}
        self._renumber = True  # the next buttons shown start again at [1]
        self._cursor = 0  # index of the first FakeSlack call not yet rendered
        self._claimed: set[tuple[str, str]] = set()  # (channel, ts) of posted messages already shown
        self._last_shown: dict[tuple[str, str], list[str]] = {}  # (channel, ts) → how it read when last shown
        self._urls: dict[str, UrlInfo] = {}
        self._pending_forms: list[dict[str, Any]] = []
        self._drain_lock = threading.RLock()
        self._activity = threading.Event()
        self._at_prompt = False
        self._prompt_text = ""
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._tempdir: str | None = None
        self._database_note = ""
        self._log_level: int | None = None
        self._undo_logging: Callable[[], None] | None = None
        self._own_log = False  # the shell made the log file (and removes it at quit if nothing was logged)
        self._error_notes: logging.Handler | None = None
        self._notes: list[str] = []  # errors logged since the last drain, shown briefly in the conversation
        self._notes_lock = threading.Lock()
        self._readline: Any = None
        self.fake: FakeSlack | None = None
        self.bot: Bot | None = None
        self.driver: SlackDriver | None = None

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> int:
        if self.bot is None:
            self.start()
        self._banner()
        on_terminal = self.interactive and self.stdin is sys.stdin and self.stdout is sys.stdout
        if on_terminal:
            self._setup_readline()
        if self.interactive:
            self._watcher = threading.Thread(target=self._watch, name="shell-output", daemon=True)
            self._watcher.start()
        with own_terminal(self.stdin.fileno()) if on_terminal else contextlib.nullcontext(False):
            self._loop()
        if self.interactive:
            self._write(self.style.dim("Bye."))
        return 0

    def _loop(self) -> None:
        """Until quit, Ctrl-D or the end of input. Ctrl-C at the prompt (or in a command) clears the line."""
        while True:
            try:
                self._fill_pending_forms()
                line = self._read_command()
                if line is None:
                    break
                if not self.handle(line):
                    break
            except EndOfInput:
                break
            except KeyboardInterrupt:
                self._write("")
                continue
        try:
            self._settle()
            self._drain()
        except KeyboardInterrupt:  # Ctrl-C while leaving: leave now
            pass

    def handle(self, line: str) -> bool:
        """Act on one typed line. False when the user asked to leave."""
        text = line.strip()
        if not text:
            return True
        lower = text.lower()
        if lower in ("quit", "exit", "/quit", "/exit"):
            return False
        if lower in ("/help", "help", "?"):
            self._write(HELP)
            return True
        if lower == "/as" or lower.startswith("/as "):
            self._switch_user(text[3:].strip())
            return True
        if lower == "/wait" or lower.startswith("/wait "):
            self._wait(text[len("/wait") :])
            return True
        if lower == "/home":
            self._open_home()
            return True
        press = _PRESS.match(lower)
        if press:
            self._press(int(press.group(1)))
            return True
        if lower == "/snapshot" or lower.startswith("/snapshot "):
            self._command(text[len("/snapshot") :].strip())
            return True
        if text.startswith("/"):
            self._write(f"Only /snapshot is a Slack command here. {self._hint()}")
            return True
        self._write(f"In Slack that is a chat message; the bot only listens to /snapshot. {self._hint()}")
        return True

    def _hint(self) -> str:
        return "Try /snapshot help, or /help for the shell's own commands."

    # -- shell commands ------------------------------------------------------------------------------------
    def _switch_user(self, name: str) -> None:
        if not name:
            self._write(f"You are @{self.user_name} ({self.user_id}).")
            return
        name = name.lstrip("@").lower()
        self.user_id = user_id_for(name)
        self.user_name = name
        self._users[self.user_id] = name
        assert self.fake is not None
        self.fake.users[self.user_id] = {"name": name}
        self._write(f"You are now @{name} ({self.user_id}).")

    def _open_home(self) -> None:
        assert self.driver is not None
        self._drain()
        response = self.driver.app_home_opened(self.user_id)
        self._after_request(response)
        assert self.fake is not None
        if self.fake.home_view(self.user_id) is None:
            self._write(self.style.dim("(the bot has no App Home to show)"))

    # -- talking to the app --------------------------------------------------------------------------------
    def _new_response_url(
        self, *, channel: str | None, message_channel: str | None = None, message_ts: str | None = None
    ) -> str:
        assert self.fake is not None
        url = self.fake.new_response_url(
            message_channel=message_channel, message_ts=message_ts, channel=channel, user_id=self.user_id
        )
        self._urls[url] = UrlInfo(self.user_id, channel, message_channel, message_ts)
        return url

    def _command(self, text: str) -> None:
        assert self.driver is not None
        self._drain()  # whatever arrived while the user typed comes first
        self._renumber = True
        sent = self.driver.encode_text(text)
        if "<" in sent:  # typed < is sent as &lt;, so this is a mention, channel link or link Slack made
            # What Slack makes of a typed @bob, #ops or link: a newcomer sees why the bot shows `@bob`.
            self._write(self.style.dim(f"(Slack sends it as: /snapshot {sent})"))
        response = self.driver.command(
            sent,
            raw_text=True,
            user_id=self.user_id,
            user_name=self.user_name,
            channel_id=self.channel,
            channel_name=self._channels.get(self.channel, self.channel.lower()),
            response_url=self._new_response_url(channel=self.channel),
        )
        if response.status == 200 and response.body:
            self._show_ack(response)
        self._after_request(response)

    def _press(self, number: int) -> None:
        assert self.driver is not None and self.fake is not None
        self._drain()
        shown = self._buttons.get(number)
        if shown is None:
            available = f" (on screen: 1–{max(self._buttons)})" if self._buttons else ""
            self._write(f"There is no button [{number}]{available}.")
            return
        button, source = shown
        if source.kind in ("ephemeral", "home") and source.user and source.user != self.user_id:
            owner = self.names.user(source.user)
            what = "that message" if source.kind == "ephemeral" else "that Home tab"
            self._write(f"Only @{owner} can see {what}. Type /as {owner} to press it as them.")
            return
        # A link button: Slack opens the link and still tells the app about the click. A link to a message of this
        # workspace (the App Home's "Open card") shows that message, buttons included, as Slack would.
        linked = self.fake.permalink_target(button.url) if button.url else None
        if button.url and linked is None:
            self._write(self.style.dim(f"(opens {button.url})"))
        message: dict[str, Any] | None = None
        if source.kind == "message" and source.channel and source.ts:
            try:
                current = self.fake.message(source.channel, source.ts)
            except KeyError:
                self._write("That message is gone.")
                return
            if not _has_element(current.blocks, button):
                self._write("That button is no longer there: the message has changed since.")
                return
            message = current.as_payload()
        value = button.value
        if button.options:
            value = self._choose_option(button)
            if value is None:
                return
        if button.confirm is not None:
            answer = self._ask(confirm_question(button.confirm, self.style, self.names))
            if not is_yes(answer):
                self._write(self.style.dim("Not pressed."))
                return
        self._renumber = True
        channel = source.channel or self.channel
        response = self.driver.block_action(
            button.action_id,
            value,
            user_id=self.user_id,
            user_name=self.user_name,
            channel_id=channel,
            message=message,
            block_id=button.block_id,
            response_url=self._new_response_url(
                channel=channel,
                message_channel=source.channel if message is not None else None,
                message_ts=source.ts if message is not None else None,
            ),
        )
        self._after_request(response)
        if linked is not None:
            self._show_linked(*linked)

    def _show_linked(self, channel: str, ts: str) -> None:
        """The message a link points to, as it is now, with its buttons numbered from [1]."""
        assert self.fake is not None
        try:
            current = self.fake.message(channel, ts)
        except KeyError:
            self._write("That message is gone.")
            return
        self._renumber = True
        heading = f"{self._channel_heading(channel)} {self.style.dim('· opened from its link')}"
        indent = "    " if current.thread_ts and current.thread_ts != ts else ""
        self._show(heading, current.blocks, current.text, Source("message", channel, ts), indent=indent)

    def _after_request(self, response: DriverResponse) -> None:
        if response.status != 200:
            detail = response.body.strip()[:200]
            suffix = f": {detail}" if detail else ""
            self._write(self.style.red(f"(the app answered HTTP {response.status}{suffix})"))
        if not self._settle():
            self._write(self.style.dim("(the bot is still working; its answers will show up as they arrive)"))
        self._drain()

    def _show_ack(self, response: DriverResponse) -> None:
        """A command's immediate answer (help, usage errors): Slack shows it to the person who typed."""
        try:
            body = response.json()
        except ValueError:
            body = {"text": response.body}
        if not isinstance(body, dict):
            return
        in_channel = body.get("response_type") == "in_channel"
        heading = self._channel_heading(self.channel) if in_channel else self._ephemeral_heading(self.user_id)
        source = Source("message") if in_channel else Source("ephemeral", self.channel, user=self.user_id)
        self._show(heading, body.get("blocks") or [], str(body.get("text") or ""), source)

    def _settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait (with a deadline) until Bolt's listeners and the bot's background work have all finished, and the
        notification lines that work handed to a busy channel's sender are posted (printed in their place)."""
        if self.bot is None:
            return True
        deadline = time.monotonic() + timeout
        return self.bot.core.wait_idle(timeout) and self.bot.slack.notifier.wait_idle(deadline - time.monotonic())


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _has_element(blocks: list[dict[str, Any]], button: Button) -> bool:
    for block in blocks:
        elements = [*(block.get("elements", []) or []), block.get("accessory") or {}]
        for element in elements:
            if (
                isinstance(element, dict)
                and element.get("action_id") == button.action_id
                and str(element.get("value", "")) == button.value
            ):
                return True
    return False


def run_shell(
    settings: Settings,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    interactive: bool | None = None,
    simulator: VpsSimulator | None = None,
    completion_delay: float = DEFAULT_COMPLETION_DELAY,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> int:
    """`python -m bot shell`: run the shell until quit or end of input; the exit status."""
    shell = Shell(
        settings,
        stdin=stdin,
        stdout=stdout,
        interactive=interactive,
        simulator=simulator,
        completion_delay=completion_delay,
        poll_interval=poll_interval,
    )
    with shell:
        return shell.run()
