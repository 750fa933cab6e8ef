"""The local shell driven with scripted input, as a newcomer (or a script) would use it.

Each test feeds lines to `run_shell`/`Shell` through a StringIO and checks the transcript a user would read,
plus what the VPS.org simulator received: the shell runs the real app, so these are end-to-end.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import load_settings
from devkit.shell import Shell, run_shell, user_id_for
from devkit.simulator import VpsSimulator, start_in_thread
from tests.app_fixtures import SkippingClock

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Transcript:
    code: int
    out: str
    sim: VpsSimulator | None
    has_tracker: bool
    log: str = ""  # what the bot wrote to the shell's log file
    log_path: Path | None = None

    def in_order(self, *needles: str) -> None:
        """Each needle appears, after the previous one: the order a user would read them in."""
        position = 0
        for needle in needles:
            found = self.out.find(needle, position)
            assert found >= 0, f"{needle!r} not found after position {position} in:\n{self.out}"
            position = found + len(needle)

    def after(self, needle: str) -> str:
        index = self.out.find(needle)
        assert index >= 0, f"{needle!r} not in:\n{self.out}"
        return self.out[index + len(needle) :]


def run(
    lines: Sequence[str],
    *,
    database_url: str,
    sim: VpsSimulator | None = None,
    env: dict[str, str] | None = None,
    stdout: io.StringIO | None = None,
    interactive: bool = False,
    stdin: io.StringIO | None = None,
    clock: SkippingClock | None = None,
) -> Transcript:
    """`clock`: the simulator's clock (`VpsSimulator(clock=…)`), which the bot's safety-snapshot polls then move
    on instead of sleeping; the channel pacing skips on it too (on a fresh one when none is given)."""
    settings = load_settings({"SHELL_DATABASE_URL": database_url, **(env or {})}, dotenv_path=None)
    out = stdout or io.StringIO()
    if sim is None and not (env or {}).get("VPS_API_TOKEN"):
        sim = VpsSimulator(completion_delay=0)
    with tempfile.TemporaryDirectory(prefix="shell-log-") as logs:
        log_path = Path(logs) / "shell.log"
        # A long poll interval keeps the background ticker out of the way: `/wait` decides when it runs.
        shell = Shell(
            settings,
            stdin=stdin or io.StringIO("".join(line + "\n" for line in lines)),
            stdout=out,
            interactive=interactive,
            simulator=sim,
            poll_interval=3600,
            log_path=log_path,
        )
        with shell:
            assert shell.bot is not None
            # Channel pacing is the Notifier's own test (tests/scenario/test_notify.py): here a second of it costs
            # no real second, as in the scenario harness.
            pacing = clock or SkippingClock()
            shell.bot.slack.notifier.use_clock(pacing, pacing.sleep)
            if clock is not None:
                approval_clocks = shell.bot.core.approvals.clocks
                approval_clocks.sleep, approval_clocks.monotonic = clock.sleep, clock
            code = shell.run()
            assert shell.bot is not None
            has_tracker = shell.bot.slack.cards is not None
        log = log_path.read_text(encoding="utf-8") if log_path.exists() else ""
    return Transcript(code, out.getvalue(), sim, has_tracker, log, log_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shell.db'}"


def test_the_whole_tour_list_restore_refused_approved_delete_create_audit(database_url: str) -> None:
    t = run(
        [
            "/snapshot list 12345",
            "2",  # [2] Restore on #801: its form asks for the reason
            "INC-42 the tour",
            "1",  # [1] Approve on the card, as alice herself…
            "y",
            "/as bob",
            "1",  # …then as bob
            "y",
            "1",  # the card has changed: its buttons are gone
            "/snapshot delete 798",
            "1",  # [1] Delete
            "y",
            "/snapshot create 12345 before-update Before the update",
            "/snapshot audit",
        ],
        database_url=database_url,
    )
    assert t.code == 0
    assert t.sim is not None
    assert "\x1b[" not in t.out  # not a terminal: no colour codes

    # list: ephemeral, readable, numbered
    t.in_order(
        "snapshot-bot · only visible to you",
        "web-server-01 (id 12345) · server active  [1] Create snapshot",
        "pre-migration-snapshot · #801 · ✅ completed · 5.0 GB",
        "[2] Restore  [3] Delete",
        "weekly-snapshot-2025-01-08 · #798",
        "[4] Restore  [5] Delete",
    )
    # restore requested by alice: the card in the channel, her own note, and no call to VPS.org yet
    t.in_order(
        "▸ #ops · snapshot-bot",
        "RESTORE REQUEST #1",
        "Reason: “INC-42 the tour”",
        "Asked by: @alice",
        "Safety snapshot: pre-restore-1 of the server's current state is taken first",
        "[1] Approve (safety snapshot first)  [2] Approve without safety snapshot  [3] Reject  [4] Cancel (requester)",
        "Your restore request #1 is waiting for approval.",
        # refused for alice, after the confirm dialog she answered
        "Approve this restore? — A safety snapshot pre-restore-1 of the server is taken first; once VPS.org says it "
        "is completed, pre-migration-snapshot (#801) is restored onto web-server-01, overwriting all current data "
        "there. Restoring the safety snapshot undoes it. [y/N] y",
        "You can't approve your own request",
        # approved by bob: the card is updated in place and the requester told in its thread
        "You are now @bob (U0BOB).",
        "[y/N] y",
        "▸ #ops · snapshot-bot · updated",
        "Approved by @bob",
        "To go back: /snapshot restore 900",
        "reply in thread: Restore requested by @alice",
        "@alice Restore request #1 (pre-migration-snapshot → web-server-01) was approved",
        "That button is no longer there",
    )
    # the safety snapshot (#900) was made before the restore
    assert t.sim.snapshot_status(900) == "completed"
    restores = t.sim.calls("POST", "snapshots/801/restore/")
    assert len(restores) == 1 and restores[0].status == 200 and restores[0].applied

    # delete, after confirming
    t.in_order(
        "Delete snapshot weekly-snapshot-2025-01-08 (#798) of web-server-01?",
        "[1] Delete  [2] Cancel",
        "Delete this snapshot? — weekly-snapshot-2025-01-08 (#798) on web-server-01 "
        "will be deleted permanently. [y/N] y",
        "snapshot-bot · only visible to you · updated",
        "@bob deleted snapshot weekly-snapshot-2025-01-08 (#798) of web-server-01.",
        "▸ #ops · snapshot-bot",
        "@bob deleted snapshot weekly-snapshot-2025-01-08",
    )
    assert [c.path for c in t.sim.calls("DELETE")] == ["/api/v1/snapshots/798/"]

    # create, announced in the channel
    t.in_order("@bob started snapshot before-update (#901) of web-server-01 (id 12345).", "⏳ in progress")
    assert [c.json["name"] for c in t.sim.calls("POST") if c.path == "/api/v1/snapshots/"] == [
        "pre-restore-1",
        "before-update",
    ]
    assert t.sim.calls("POST")[-1].json == {
        "server_id": 12345,
        "name": "before-update",
        "description": "Before the update",
    }

    # the audit trail, newest first, names not ids
    audit = t.after("Audit — all events, newest first")
    for action in ("create.succeeded", "delete.succeeded", "restore.executed", "restore.approved"):
        assert action in audit
    t.in_order("@bob restore.approved", "@alice refused.self_approval", "@alice restore.requested")
    assert "U0ALICE" not in audit


def test_create_completion_is_announced_after_wait(sqlite_url: str) -> None:
    t = run(["/snapshot create 12345 nightly", "/wait"], database_url=sqlite_url)
    t.in_order("@alice started snapshot nightly (#900)", "in progress")
    assert t.has_tracker, "snapshot tracking is not wired into the bot the shell runs"
    later = t.after("in progress")
    assert "nightly" in later and ("completed" in later or "ready" in later), later
    t.in_order("is ready", "(done after ", " s: snapshot nightly (#900) of web-server-01: finished)")


def test_wait_waits_for_the_snapshot_and_the_restore_to_end_before_the_next_line(sqlite_url: str) -> None:
    # VPS.org (the simulator) finishes the snapshot after 1 s and the restore after 1 s of its clock, which moves
    # with real time and with each poll the bot waits between two looks at the safety snapshot.
    clock = SkippingClock()
    sim = VpsSimulator(completion_delay=1.0, restore_delay=1.0, clock=clock)
    t = run(
        ["/snapshot create 12345 nightly", "/snapshot restore 801", "/as bob", "1", "y", "/wait 30", "/as alice"],
        database_url=sqlite_url,
        sim=sim,
        clock=clock,
    )
    t.in_order(
        "@alice started snapshot nightly (#900)",
        "⏳ in progress",
        "RESTORE REQUEST #1",
        "Approved by @bob",
        # /wait: the cards and thread replies of both endings come first, then what ended, then the next line
        "Snapshot nightly of web-server-01 is ready",
        "(done after ",
        "snapshot nightly (#900) of web-server-01: finished",
        "restore of pre-migration-snapshot (#801) onto web-server-01: finished)",
        "You are now @alice",
    )
    assert sim is not None and len(sim.calls("POST", "snapshots/801/restore/")) == 1


def updates(out: str) -> list[str]:
    """The body of each `· updated` message printed, in order (its indented lines under the heading)."""
    bodies: list[str] = []
    lines = out.split("\n")
    for index, line in enumerate(lines):
        if line.startswith("▸ ") and line.endswith("· updated"):
            body = []
            for following in lines[index + 1 :]:
                if not following.startswith("  ") or following.lstrip().startswith("▸ "):
                    break
                body.append(following)
            bodies.append("\n".join(body))
    return bodies


def test_a_card_being_restored_is_printed_again_only_when_it_reads_differently(sqlite_url: str) -> None:
    # While the restore runs, each forced tick refreshes the card and the tracking event updates it too.
    sim = VpsSimulator(completion_delay=0, restore_delay=2.0)
    t = run(["/snapshot restore 801", "/as bob", "1", "y", "/wait 30"], database_url=sqlite_url, sim=sim)
    shown = updates(t.out)
    t.in_order("taking the safety snapshot first", "being restored for under a minute", "restore finished")
    assert len(shown) >= 3 and all(a != b for a, b in itertools.pairwise(shown)), "\n\n".join(shown)


def test_wait_times_out_and_says_what_is_still_running(sqlite_url: str) -> None:
    sim = VpsSimulator(completion_delay=600)
    t = run(["/snapshot create 12345 slow-one", "/wait 0.5", "/as bob"], database_url=sqlite_url, sim=sim)
    t.in_order(
        "@alice started snapshot slow-one (#900)",
        "(stopped waiting after ",
        " s; still running: snapshot slow-one (#900) of web-server-01 — in progress — "
        "shown here when it ends, or /wait again)",
        "You are now @bob",
    )


def test_wait_with_nothing_running_and_with_a_bad_argument(sqlite_url: str) -> None:
    t = run(["/wait", "/wait soon", "/wait -3"], database_url=sqlite_url)
    t.in_order(
        "(nothing to wait for: the bot is not following any work)",
        "Usage: /wait [seconds] — e.g. /wait 30",
        "Usage: /wait [seconds]",
    )


def test_answering_no_to_a_confirm_changes_nothing_and_cancel_dismisses(sqlite_url: str) -> None:
    t = run(["/snapshot delete 798", "1", "n", "2"], database_url=sqlite_url)
    t.in_order("[1] Delete  [2] Cancel", "[y/N] n", "Not pressed.", "(dismissed)")
    assert t.sim is not None and t.sim.calls("DELETE") == []


def test_the_create_form_is_asked_field_by_field_and_errors_are_asked_again(sqlite_url: str) -> None:
    # The server select asks the bot for its options with what was typed: "" lists all, "web" narrows to one.
    t = run(["/snapshot create", "", "9", "web", "bad name", "", "good-name"], database_url=sqlite_url)
    t.in_order(
        "▸ Form: Create snapshot",
        "stop the server first",
        "Enter keeps a value shown in [brackets]; (e.g. …) is only an example",
        "Server (Pick a server): ",
        "1. cache-01 (id 12347) · active",
        "5. web-server-01 (id 12345) · active",
        "Which one? 9",
        "Nothing chosen; type again.",
        "Server (Pick a server): web",
        "1. web-server-01 (id 12345) · active",
        "Snapshot name (e.g. before-update): bad name",
        "Description (optional): ",
        "Snapshot name: The snapshot name may contain only letters, digits, hyphens and underscores",
        "Snapshot name (e.g. before-update): good-name",
        "(Create: sent)",
        "@alice started snapshot good-name",
    )
    assert t.sim is not None
    assert [c.json["name"] for c in t.sim.calls("POST", "snapshots/")] == ["good-name"]


def test_end_of_input_inside_a_form_sends_nothing(sqlite_url: str) -> None:
    t = run(["/snapshot create", "12345"], database_url=sqlite_url)
    assert t.code == 0
    assert t.sim is not None and t.sim.calls("POST") == []


def test_ephemeral_buttons_belong_to_their_reader(sqlite_url: str) -> None:
    t = run(["/snapshot list 12345", "/as carol", "3", "/as", "9", "click 2"], database_url=sqlite_url)
    t.in_order(
        "You are now @carol (U0CAROL).",
        "Only @alice can see that message. Type /as alice to press it as them.",
        "You are @carol (U0CAROL).",
        "There is no button [9] (on screen: 1–5).",
        "Only @alice can see that message.",
    )
    assert t.sim is not None and t.sim.calls("DELETE") == [] and t.sim.calls("POST") == []


def test_help_usage_errors_and_things_that_are_not_commands(sqlite_url: str) -> None:
    t = run(
        ["/help", "/snapshot", "/snapshot frobnicate", "hello bot", "/deploy", "quit", "/snapshot list"],
        database_url=sqlite_url,
    )
    t.in_order(
        "/as bob",
        "act as someone else",
        "/wait",
        # `/snapshot` alone: the bot's help, which Slack shows from the command's immediate answer
        "Snapshot bot — VPS.org snapshots from Slack",
        "/snapshot restore <snapshot_id>",
        "Access control is OFF",
        "I don't know frobnicate.",
        "In Slack that is a chat message",
        "Only /snapshot is a Slack command here.",
    )
    assert "snapshots on" not in t.out  # nothing after `quit` ran
    assert t.sim is not None and t.sim.requests == []


def test_app_home_opens_and_its_buttons_press_for_their_owner_only(sqlite_url: str) -> None:
    t = run(["/home", "1", "/as bob", "1"], database_url=sqlite_url)
    assert "no App Home" not in t.out, "the App Home is not wired into the bot the shell runs"
    t.in_order(
        "▸ App Home of @alice",
        "[1] Refresh",
        "▸ App Home of @alice",  # Refresh published it again
        "You are now @bob",
        "Only @alice can see that Home tab. Type /as alice to press it as them.",
    )


def test_user_ids_are_stable_and_the_demo_users_are_the_documented_ones() -> None:
    assert user_id_for("alice") == "U0ALICE" and user_id_for("@Bob") == "U0BOB"
    assert user_id_for("carol") == "U0CAROL"
    odd = user_id_for("Zoë O'Neil")
    assert odd == user_id_for("zoë o'neil") and odd.startswith("U1") and odd.isalnum() and odd.isupper()


def test_real_account_mode_uses_the_configured_api_and_says_so_loudly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = VpsSimulator(token="vps_real_looking_token_123", completion_delay=0)
    url, stop = start_in_thread(sim)
    try:
        t = run(
            ["/snapshot list 12345"],
            database_url=f"sqlite:///{tmp_path / 'real.db'}",
            env={"VPS_API_URL": url, "VPS_API_TOKEN": sim.token},
        )
    finally:
        stop()
    banner = capsys.readouterr().err
    assert "REAL VPS.org account" in banner and url in banner
    assert "vps_real_looking_token_123" not in banner + t.out
    assert f"Database: sqlite:///{tmp_path / 'real.db'}" in banner
    assert f"Log: {t.log_path} " in banner
    assert "pre-migration-snapshot" in t.out
    assert sim.requests and all(r.authorized for r in sim.requests)  # over HTTP, with the configured token


def test_colour_only_on_a_terminal(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ANSI colours on a terminal; none when NO_COLOR is set (https://no-color.org)."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = run(["/snapshot list 12345"], database_url=sqlite_url, stdout=Terminal(), interactive=True)
    assert "\x1b[" in coloured.out
    assert "alice" in coloured.out and " › " in coloured.out  # the prompt, when interactive
    assert "snapshot-bot shell" in coloured.out  # interactive: the banner is part of the conversation

    monkeypatch.setenv("NO_COLOR", "1")
    plain = run(["/snapshot list 12345"], database_url=sqlite_url, stdout=Terminal(), interactive=True)
    assert "\x1b[" not in plain.out
    assert "pre-migration-snapshot · #801" in plain.out


def test_run_shell_returns_zero_at_end_of_input(sqlite_url: str) -> None:
    out = io.StringIO()
    settings = load_settings({"SHELL_DATABASE_URL": sqlite_url}, dotenv_path=None)
    code = run_shell(settings, stdin=io.StringIO("/snapshot list 12346\n"), stdout=out, interactive=False)
    assert code == 0
    assert "db-server-01" in out.getvalue()


def test_python_m_bot_shell_reads_a_pipe_and_exits_zero(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "LANG": "C.UTF-8",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "shell"],
        input="/snapshot list\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "only visible to you" in result.stdout
    assert "web-server-01 (id 12345)" in result.stdout and "pre-migration-snapshot" in result.stdout
    assert "built-in simulator" in result.stderr
    assert "\x1b[" not in result.stdout
    assert not (tmp_path / "snapshot-bot.db").exists()  # the throwaway database lives elsewhere
    assert not (tmp_path / ".snapshot_bot_history").exists()  # no history without a terminal


def test_a_typed_mention_reaches_the_bot_as_slack_sends_it(sqlite_url: str) -> None:
    t = run(["/snapshot create 12345 ask-bob Ask @bob & <ops> first, see #ops"], database_url=sqlite_url)
    assert t.code == 0 and t.sim is not None
    # Shown as Slack sends it: @bob and #ops are a mention and a channel link, & < > are escaped.
    t.in_order(
        "(Slack sends it as: /snapshot create 12345 ask-bob Ask <@U0BOB|bob> &amp; &lt;ops&gt; first, see "
        "<#C0OPS|ops>)",
        "ask-bob",
    )
    posts = [r.json for r in t.sim.requests if r.method == "POST" and r.path == "/api/v1/snapshots/"]
    assert [p["description"] for p in posts] == ["Ask @bob & <ops> first, see #ops"]
    announced = t.after("started snapshot ask-bob")
    # Shown inert (bot/mrkdwn.py): `@` before a word becomes its look-alike, so the text can never mention anyone.
    assert "“Ask ＠bob & <ops> first, see #ops”" in announced and "&amp;" not in announced


def test_app_home_open_card_shows_the_card_with_its_buttons(sqlite_url: str) -> None:
    # Bob's Home lists Alice's request; [6] "Open card" shows the card itself, whose [1] Approve works.
    # (The card's four buttons are [1]–[4], Home's Refresh [5].)
    t = run(["/snapshot restore 801 INC-1", "/as bob", "/home", "6", "1", "y"], database_url=sqlite_url)
    t.in_order(
        "▸ App Home of @bob",
        "[6] Open card",
        "▸ #ops · snapshot-bot · opened from its link",
        "RESTORE REQUEST #1",
        "[1] Approve (safety snapshot first)  [2] Approve without safety snapshot  [3] Reject  [4] Cancel (requester)",
        "Approve this restore?",
        "Approved by @bob",
    )
    assert "(opens https://" not in t.out  # the card, not its address
    # The safety snapshot first (the default `auto`), then the restore.
    assert t.sim is not None
    assert [c.path for c in t.sim.calls("POST")] == ["/api/v1/snapshots/", "/api/v1/snapshots/801/restore/"]


def test_log_lines_go_to_the_log_file_the_banner_names_not_into_the_conversation(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = VpsSimulator(completion_delay=0)
    sim.faults.fail_next(503, times=1, methods=["GET"])  # one retried GET: a WARNING from bot.vps.client
    t = run(["/snapshot list 12345"], database_url=sqlite_url, sim=sim)
    banner = capsys.readouterr().err
    assert f"Log: {t.log_path} " in banner
    assert "Database: " in banner and "shell.db" not in t.out
    assert "pre-migration-snapshot" in t.out  # the retry worked; the user sees the answer…
    assert "WARNING" not in t.out and "bot.vps.client" not in t.out  # …and no log line
    assert "WARNING bot.vps.client" in t.log and "retry 1" in t.log


class _OnSecondRead(io.StringIO):
    """Scripted stdin that does `then` just as its second line is asked for (before handing it out)."""

    def __init__(self, text: str, then: Callable[[], None]) -> None:
        super().__init__(text)
        self.reads = 0
        self.then = then

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        self.reads += 1
        if self.reads == 2:
            self.then()
        return super().readline(size)


def _log_an_error() -> None:  # as a failing background job would
    logging.getLogger("bot.runtime").error("background job flush failed\nTraceback (most recent call last): …")


def _ctrl_c() -> None:  # as a Ctrl-C at the prompt interrupts the read
    raise KeyboardInterrupt


def test_an_error_the_bot_logs_is_noted_briefly_in_the_conversation(sqlite_url: str) -> None:
    stdin = _OnSecondRead("/snapshot list 12345\n/snapshot list 12346\n", _log_an_error)
    t = run([], database_url=sqlite_url, stdin=stdin)
    t.in_order(
        "web-server-01 (id 12345)",
        f"(error logged by the bot: background job flush failed — details in {t.log_path})",
        "db-server-01",
    )
    assert "Traceback" not in t.out  # one line in the conversation; the whole record is in the file
    assert "ERROR bot.runtime: background job flush failed" in t.log and "Traceback" in t.log


def test_ctrl_c_at_the_prompt_does_not_end_the_shell_and_quit_exits_zero(sqlite_url: str) -> None:
    stdin = _OnSecondRead("/snapshot list 12345\nquit\n/snapshot list 12346\n", _ctrl_c)
    t = run([], database_url=sqlite_url, stdin=stdin)
    assert t.code == 0
    assert "web-server-01 (id 12345)" in t.out
    assert "db-server-01" not in t.out  # `quit`, after the Ctrl-C, ended it


class ScriptWithHooks(io.StringIO):
    """Scripted input that runs `hooks[line]` just before the shell reads that line: what happens elsewhere."""

    def __init__(self, lines: Sequence[str], hooks: dict[str, Callable[[], None]]) -> None:
        super().__init__("".join(line + "\n" for line in lines))
        self.hooks = hooks

    def readline(self, size: int | None = -1) -> str:
        line = super().readline(-1 if size is None else size)
        hook = self.hooks.pop(line.strip(), None)
        if hook is not None:
            hook()
        return line


def test_wait_and_home_name_a_restore_taking_its_safety_snapshot_on_another_replica(sqlite_url: str) -> None:
    settings = load_settings({"SHELL_DATABASE_URL": sqlite_url}, dotenv_path=None)
    out = io.StringIO()
    shell: Shell

    def another_replica_approves_and_takes_the_safety_snapshot() -> None:
        # What the executor of another replica has stored by the time its safety create is on its way.
        bot = shell.bot
        assert bot is not None
        store = bot.core.approvals.requests
        with bot.core.db.session() as session:
            won = store.start_executing(
                session,
                1,
                decided_by=user_id_for("bob"),
                now=datetime.now(UTC),
                token="another-replica",
                claim_ttl=timedelta(minutes=10),
                safety_choice="snapshot",
            )
            assert won and store.set_safety(session, 1, "another-replica", safety_state="creating")

    stdin = ScriptWithHooks(
        ["/snapshot restore 801", "/wait 0.5", "/home"],
        {"/wait 0.5": another_replica_approves_and_takes_the_safety_snapshot},
    )
    with tempfile.TemporaryDirectory(prefix="shell-log-") as logs:
        shell = Shell(
            settings,
            stdin=stdin,
            stdout=out,
            interactive=False,
            simulator=VpsSimulator(completion_delay=0),
            poll_interval=3600,
            log_path=Path(logs) / "shell.log",
        )
        with shell:
            assert shell.run() == 0
    t = Transcript(0, out.getvalue(), None, True)
    step = "restore #1 of pre-migration-snapshot on web-server-01: taking the safety snapshot pre-restore-1 (since "
    t.in_order("RESTORE REQUEST #1", "(stopped waiting after ", f"still running: {step}", "App Home of @alice")
    t.in_order("App Home of @alice", "IN PROGRESS", f"• {step}")


def test_an_update_that_changes_nothing_a_reader_sees_is_not_printed_again(sqlite_url: str) -> None:
    from slack_sdk import WebClient

    settings = load_settings({"SHELL_DATABASE_URL": sqlite_url}, dotenv_path=None)
    out = io.StringIO()
    shell: Shell

    def the_bot_updates_a_card_twice_the_same_then_changes_it() -> None:
        # As the bot does while a restore runs: a tick's refresh and the tracking event both update the card.
        assert shell.fake is not None
        slack = WebClient(token=shell.fake.bot_token, base_url=shell.fake.api_url)
        ts = slack.chat_postMessage(channel=shell.channel, text="card", blocks=card("requested"))["ts"]
        for status in ("being restored", "being restored", "being restored", "finished"):
            slack.chat_update(channel=shell.channel, ts=ts, text="card", blocks=card(status))

    def card(status: str) -> list[dict[str, object]]:
        return [{"type": "section", "text": {"type": "mrkdwn", "text": f"*Restore #1* — {status}"}}]

    stdin = ScriptWithHooks(["/wait 0"], {"/wait 0": the_bot_updates_a_card_twice_the_same_then_changes_it})
    with tempfile.TemporaryDirectory(prefix="shell-log-") as logs:
        shell = Shell(
            settings,
            stdin=stdin,
            stdout=out,
            interactive=False,
            simulator=VpsSimulator(completion_delay=0),
            poll_interval=3600,
            log_path=Path(logs) / "shell.log",
        )
        with shell:
            assert shell.run() == 0
    t = Transcript(0, out.getvalue(), None, True)
    t.in_order("Restore #1 — requested", "· updated", "Restore #1 — being restored", "· updated", "— finished")
    assert t.out.count("· updated") == 2 and t.out.count("being restored") == 1
