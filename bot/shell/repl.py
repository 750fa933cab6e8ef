"""The local shell: the whole bot in a terminal, with no Slack workspace and no VPS.org account.

It runs the production Bolt app and listeners unchanged. Each typed line becomes a signed Slack request sent
through the real WSGI app (`SlackDriver` + `wsgi_sender`), and the app's Web API calls land in an in-process
`FakeSlack`, whose record of calls is rendered here. There is no second code path for the bot's logic: what
works in the shell works in Slack, and the other way round.

VPS.org is the in-process simulator unless VPS_API_TOKEN is set (then it is the real account, with a loud
banner); the database is a throwaway SQLite file unless DATABASE_URL says otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.config import DEFAULT_DATABASE_URL, Secret, Settings
from bot.devtools.fake_slack import RESPONSE_URL_METHOD, FakeSlack, SlackCall
from bot.devtools.slack_driver import DriverResponse, SlackDriver, wsgi_sender
from bot.shell.render import (
    Button,
    Field,
    Form,
    Names,
    Style,
    confirm_question,
    framed,
    is_yes,
    mrkdwn,
    parse_modal,
    render_blocks,
)
from bot.vps.simulator import VpsSimulator
from storage.db import safe_url

if TYPE_CHECKING:
    from bot.wiring import Bot

log = logging.getLogger(__name__)

DEMO_USERS = {"alice": "U0ALICE", "bob": "U0BOB"}
SHELL_CHANNEL = "C0OPS"
SHELL_CHANNEL_NAME = "ops"
BOT_NAME = "snapshot-bot"
DEFAULT_COMPLETION_DELAY = 15.0  # long enough to see "in progress", short enough to wait for "completed"
DEFAULT_POLL_INTERVAL = 2.0
SETTLE_TIMEOUT = 30.0  # how long a line may keep the bot busy before the prompt comes back anyway
HISTORY_FILE = Path("~/.snapshot_bot_history")
# Requests the shell never shows: lookups the bot makes, not things a user would see.
_SILENT_METHODS = frozenset(
    {"auth.test", "users.info", "conversations.info", "chat.getPermalink", "usergroups.users.list"}
)
# Never reached: with the simulator the VPS client talks to an in-process transport. Loopback and the
# discard port anyway, so a wiring mistake can't send anything off the machine.
_SIMULATOR_URL = "http://127.0.0.1:9/api/v1/"
_PRESS = re.compile(r"^(?:click|press)?\s*\[?#?(\d{1,4})\]?$")
_USER_NAME = re.compile(r"^[a-z0-9]{1,12}$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

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
  /wait                           let the bot check on running work now (it also does every few seconds)
  /home                           open the bot's App Home tab
  /help                           this help
  quit                            leave (Ctrl-D works too)"""


def user_id_for(name: str) -> str:
    """The Slack user id the shell uses for `name`: the demo ids for alice and bob, a stable one otherwise."""
    name = name.strip().lstrip("@").lower()
    if name in DEMO_USERS:
        return DEMO_USERS[name]
    if _USER_NAME.match(name):
        return "U0" + name.upper()
    return "U1" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10].upper()


@dataclass(frozen=True)
class _Source:
    """Where a shown button lives: a channel message, an ephemeral message, or a Home tab."""

    kind: str  # "message" | "ephemeral" | "home"
    channel: str | None = None
    ts: str | None = None
    user: str | None = None


@dataclass(frozen=True)
class _UrlInfo:
    """What the shell knows about a response_url it handed out, to render what is posted to it."""

    user: str
    channel: str | None
    message_channel: str | None = None
    message_ts: str | None = None


class _EndOfInput(Exception):
    """stdin ran out in the middle of a question (a confirm or a form)."""


class Shell:
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
    ) -> None:
        self.settings = settings
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

        self._buttons: dict[int, tuple[Button, _Source]] = {}
        self._renumber = True  # the next buttons shown start again at [1]
        self._cursor = 0  # index of the first FakeSlack call not yet rendered
        self._claimed: set[tuple[str, str]] = set()  # (channel, ts) of posted messages already shown
        self._urls: dict[str, _UrlInfo] = {}
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
        self._readline: Any = None
        self.fake: FakeSlack | None = None
        self.bot: Bot | None = None
        self.driver: SlackDriver | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> Shell:
        try:
            self.start()
        except BaseException:
            self.close()  # a half-started shell still has a fake Slack thread and maybe a temp dir
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        from bot.background import start_background
        from bot.wiring import build_bot

        self._quiet_logs()
        self.fake = FakeSlack(
            team_id=self.settings.slack_team_id or "T0SNAPBOT",
            bot_token="xoxb-shell-" + secrets.token_hex(12),
        ).start()
        self.fake.users.update({uid: {"name": name} for uid, name in self._users.items()})
        self.fake.channels.update({cid: {"name": name} for cid, name in self._channels.items()})
        self._users[self.fake.bot_user_id] = BOT_NAME
        signing_secret = secrets.token_hex(16)
        derived = replace(
            self.settings,
            slack_bot_token=Secret(self.fake.bot_token),
            slack_signing_secret=Secret(signing_secret),
            slack_app_token=None,
            slack_api_url=self.fake.api_url,
            database_url=self._database_url(),
            poll_seconds=self.poll_interval,
        )
        transport = None
        if self.simulator is not None:
            derived = replace(derived, vps_api_url=_SIMULATOR_URL, vps_api_token=Secret(self.simulator.token))
            transport = self.simulator.transport()
        self.bot = bot = build_bot(derived, vps_transport=transport)
        self.driver = SlackDriver(
            wsgi_sender(bot.wsgi),
            signing_secret,
            team_id=self.fake.team_id,
            api_app_id=self.fake.api_app_id,
            bot_user_id=self.fake.bot_user_id,
            bot_id=self.fake.bot_id,
            directory=self.fake,  # a typed @bob reaches the bot as the mention Slack would make of it
        )
        # Calls made while building (auth.test) are not news.
        self._cursor = len(self.fake.calls)
        self.fake.on_call = lambda call: self._activity.set()
        start_background(bot)

    def close(self) -> None:
        self._stopping.set()
        self._activity.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self.bot is not None:
            self._settle(5.0)
            self.bot.close()
            self.bot = None
        if self.fake is not None:
            self.fake.on_call = None
            self.fake.stop()
            self.fake = None
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
        self._save_history()
        if self._log_level is not None:
            logging.getLogger().setLevel(self._log_level)
            self._log_level = None

    def _running(self) -> Bot:
        if self.bot is None:
            raise RuntimeError("the shell is not started")
        return self.bot

    def _database_url(self) -> str:
        url = self.settings.database_url
        if self.simulator is not None and url == DEFAULT_DATABASE_URL:
            # Simulated servers with a real audit trail would be confusing: start clean, leave nothing behind.
            self._tempdir = tempfile.mkdtemp(prefix="snapshot-bot-shell-")
            self._database_note = "a fresh SQLite file, deleted when you quit"
            return f"sqlite:///{Path(self._tempdir) / 'shell.db'}"
        self._database_note = safe_url(url)
        return url

    def _quiet_logs(self) -> None:
        # The shell's output is the conversation; routine INFO lines on the same terminal would bury it.
        if self.settings.log_level == "INFO":
            root = logging.getLogger()
            self._log_level = root.level
            root.setLevel(logging.WARNING)

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> int:
        if self.bot is None:
            self.start()
        self._banner()
        if self.interactive:
            if self.stdin is sys.stdin and self.stdout is sys.stdout:
                self._setup_readline()
            self._watcher = threading.Thread(target=self._watch, name="shell-output", daemon=True)
            self._watcher.start()
        while True:
            try:
                self._fill_pending_forms()
                line = self._read_command()
                if line is None:
                    break
                if not self.handle(line):
                    break
            except _EndOfInput:
                break
            except KeyboardInterrupt:
                self._write("")
                continue
        self._settle()
        self._drain()
        if self.interactive:
            self._write(self.style.dim("Bye."))
        return 0

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
        if lower in ("/wait", "/tick"):
            self._tick()
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

    def _tick(self) -> None:
        from bot.background import ticker_for

        self._drain()
        bot = self._running()
        (bot.ticker or ticker_for(bot, self.poll_interval)).tick()
        self._settle()
        if not self._drain():
            self._write(self.style.dim("(nothing new)"))

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
        self._urls[url] = _UrlInfo(self.user_id, channel, message_channel, message_ts)
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
        if button.url:  # a link button: Slack opens the link and still tells the app about the click
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

    def _choose_option(self, button: Button) -> str | None:
        for index, (label, _) in enumerate(button.options, 1):
            self._write(f"  {index}. {label}")
        answer = (self._ask(f"{button.label} — which one? ") or "").strip()
        for index, (label, value) in enumerate(button.options, 1):
            if answer in (str(index), value, label):
                return value
        self._write(self.style.dim("Nothing chosen."))
        return None

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
        source = _Source("message") if in_channel else _Source("ephemeral", self.channel, user=self.user_id)
        self._show(heading, body.get("blocks") or [], str(body.get("text") or ""), source)

    def _settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait (with a deadline) until Bolt's listeners and the bot's background work have all finished."""
        return True if self.bot is None else self.bot.core.wait_idle(timeout)

    # -- forms ---------------------------------------------------------------------------------------------
    def _fill_pending_forms(self) -> None:
        while self._pending_forms:
            self._fill_form(self._pending_forms.pop(0))

    def _fill_form(self, view: dict[str, Any]) -> None:
        assert self.driver is not None
        form = parse_modal(view, self.style, self.names)
        self._show_form_heading(form)
        answers: dict[str, str] = {}
        to_ask = form.fields
        while True:
            for field in to_ask:
                answer = self._ask_field(field)
                if answer is None:
                    self._write(self.style.dim("Form closed; nothing was sent."))
                    return
                answers[field.block_id] = answer
            response = self.driver.view_submission(
                form.callback_id,
                form.values(answers),
                user_id=self.user_id,
                user_name=self.user_name,
                private_metadata=form.private_metadata,
                blocks=form.blocks,
            )
            body: dict[str, Any] = {}
            if response.status == 200 and response.body:
                with contextlib.suppress(ValueError):
                    decoded = response.json()
                    body = decoded if isinstance(decoded, dict) else {}
            action = body.get("response_action")
            if action == "errors" and isinstance(body.get("errors"), dict):
                errors = {str(k): str(v) for k, v in body["errors"].items()}
                for field in form.fields:
                    if field.block_id in errors:
                        self._write(self.style.red(f"{field.label}: {errors[field.block_id]}"))
                to_ask = [f for f in form.fields if f.block_id in errors] or form.fields
                continue
            if action in ("update", "push") and isinstance(body.get("view"), dict):
                form = parse_modal(body["view"], self.style, self.names)
                self._show_form_heading(form)
                answers, to_ask = {}, form.fields
                continue
            self._write(self.style.dim(f"({form.submit}: sent)"))
            self._renumber = True
            self._after_request(response)
            return

    def _show_form_heading(self, form: Form) -> None:
        body = [*form.notes, self.style.dim("Enter keeps what is in brackets; /cancel closes the form.")]
        self._write_lines(framed(self.style.bold(f"Form: {form.title}"), body, self.style))

    def _ask_field(self, field: Field) -> str | None:
        """One field's answer ("" for blank), or None when the user closed the form."""
        if field.hint:
            self._write(self.style.dim(f"  {field.hint}"))
        for index, (label, _) in enumerate(field.options, 1):
            self._write(f"  {index}. {label}")
        while True:
            answer = self._ask("  " + field.prompt(self.style))
            if answer is None or answer.strip().lower() == "/cancel":
                return None
            answer = answer.strip()
            if answer or field.optional or field.initial:
                return answer
            self._write(self.style.red("  This field is required."))

    # -- input ---------------------------------------------------------------------------------------------
    def _prompt(self) -> str:
        return self.style.green(self.style.bold(self.user_name)) + " › "

    def _read_command(self) -> str | None:
        if not self.interactive:
            line = self.stdin.readline()
            return None if line == "" else line
        self._prompt_text = self._prompt()
        self._at_prompt = True
        self._activity.set()  # output that arrived just before the prompt: show it now
        try:
            line: str | None = self._input(self._prompt_text)
        except EOFError:
            line = None
        finally:
            with self._drain_lock:  # not while the watcher is halfway through redrawing the prompt
                self._at_prompt = False
        if line is None:
            self._write("")
        return line

    def _ask(self, question: str) -> str | None:
        """A question inside a flow (a confirm, a form field). None at end of input."""
        if self.interactive:
            try:
                return self._input(question)
            except EOFError:
                self._write("")
                return None
            except KeyboardInterrupt:
                self._write("")
                return None
        line = self.stdin.readline()
        if line == "":
            self._write(question.rstrip())
            raise _EndOfInput
        answer = line.rstrip("\n")
        # Scripted: show the question with its answer, so the transcript reads like the conversation it was.
        self._write(question + answer)
        return answer

    def _input(self, prompt: str) -> str:
        if self.stdin is sys.stdin and self.stdout is sys.stdout:
            if self._readline is not None:  # readline must be told which prompt bytes take no columns
                prompt = _ANSI.sub(lambda m: f"\x01{m.group(0)}\x02", prompt)
            return input(prompt)  # readline editing and history
        self._write_raw(prompt)
        line = self.stdin.readline()
        if line == "":
            raise EOFError
        return line.rstrip("\n")

    def _setup_readline(self) -> None:
        try:
            import readline
        except ImportError:  # not on every platform; the shell works without it
            return
        self._readline = readline
        with contextlib.suppress(OSError):
            readline.read_history_file(HISTORY_FILE.expanduser())
        readline.set_history_length(1000)

    def _save_history(self) -> None:
        if self._readline is not None:
            with contextlib.suppress(OSError):
                self._readline.write_history_file(HISTORY_FILE.expanduser())

    # -- output --------------------------------------------------------------------------------------------
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
        access = mrkdwn(self._running().core.access.describe(), style, self.names)
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
                except _EndOfInput:
                    raise
                except Exception:  # a rendering bug must not end the session
                    log.exception("could not render %s", call.method)
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
            source = _Source("ephemeral", str(args.get("channel") or self.channel), user=user)
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
            self._show(heading, view.get("blocks") or [], "", _Source("home", user=user))
            return True
        return False

    def _render_post(self, args: dict[str, Any]) -> bool:
        assert self.fake is not None
        channel = self._resolve_channel(str(args.get("channel") or ""))
        text = str(args.get("text") or "")
        ts = self._claim(channel, text)
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        source = _Source("message", channel, ts) if ts else _Source("message", channel)
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
        heading = f"{self._channel_heading(channel)} {self.style.yellow('· updated')}"
        self._show(heading, blocks, text, _Source("message", channel, ts), indent=indent)
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
                heading = f"{self._channel_heading(channel)} {self.style.yellow('· updated')}"
                self._show(heading, blocks, text, _Source("message", channel, info.message_ts))
            else:
                heading = f"{self._ephemeral_heading(user)} {self.style.yellow('· updated')}"
                channel = info.channel if info else self.channel
                self._show(heading, blocks, text, _Source("ephemeral", channel, user=user))
            return True
        if args.get("response_type") == "in_channel" and info is not None and info.channel:
            ts = self._claim(info.channel, text)
            source = _Source("message", info.channel, ts)
            self._show(self._channel_heading(info.channel), blocks, text, source)
            return True
        channel = info.channel if info else self.channel
        self._show(self._ephemeral_heading(user), blocks, text, _Source("ephemeral", channel, user=user))
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

    def _show(
        self, heading: str, blocks: list[dict[str, Any]], text: str, source: _Source, *, indent: str = ""
    ) -> None:
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


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


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
