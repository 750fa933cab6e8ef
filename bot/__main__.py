"""`python -m bot [serve|socket|shell|run|simulate-vps|db|audit]` — with no command: the right mode for the settings.

No Slack tokens configured → the local shell against the built-in VPS.org simulator; tokens → HTTP mode (or
Socket Mode when SLACK_APP_TOKEN is set).

Rules this module keeps (issue 24 §3, 25 §5):
- A start-up failure that must stop the process is one line on stderr (`StartupFailure`, written by
  `startup_failure`: `snapshot-bot: …`, or one JSON object with LOG_FORMAT=json) saying what is wrong and what
  to do; the traceback only at LOG_LEVEL=DEBUG. Exit status 2 for a setting, 1 for anything else.
- `serve` and `socket` (and the default with tokens) refuse to start without DATABASE_URL; `run` (what
  `make run` does) uses a local SQLite file then, and says so. The shell never reads DATABASE_URL.
- The database is tried once before anything starts, so a malformed, unsupported or unreachable URL is that one
  line, not a page of traceback from deep inside a worker.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.config import DEFAULT_DATABASE_URL, ConfigError, LogFormat, Settings, load_settings, output_settings
from bot.logging_setup import configure_logging, startup_failure

log = logging.getLogger("bot")

# What a production DATABASE_URL looks like: said whenever one is missing or wrong.
DATABASE_EXAMPLES = (
    "e.g. DATABASE_URL=postgresql+psycopg://snapshot:PASSWORD@db.internal:5432/snapshot_bot (any number of "
    "replicas) or DATABASE_URL=sqlite:////var/lib/snapshot-bot/snapshot-bot.db (one replica only)"
)


class StartupFailure(Exception):
    """The process cannot start: `message` says what is wrong and what to do (one line); `status` is the exit code."""

    def __init__(self, message: str, status: int = 1, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.cause = cause


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        raise StartupFailure(f"configuration error: {error}", status=2, cause=error) from None


def cmd_default(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.slack_bot_token is None:
        return cmd_shell(args)
    if settings.slack_app_token is not None:
        return cmd_socket(args)
    return cmd_serve(args)


def cmd_run(args: argparse.Namespace) -> int:
    """`make run`: the default, except that serving with tokens but no DATABASE_URL uses a local SQLite file."""
    settings = _settings()
    if settings.slack_bot_token is not None and not settings.database_url_configured:
        args.local_database = True
        log.info(
            "DATABASE_URL is not set: `make run` keeps the bot's data in %s (this folder, one replica); "
            "set DATABASE_URL for anything else",
            DEFAULT_DATABASE_URL,
        )
    return cmd_default(args)


def _serving_settings(args: argparse.Namespace, *tokens: str) -> Settings:
    """The settings `serve` and `socket` need: the tokens, then a DATABASE_URL that opens."""
    settings = _settings()
    _require(settings, *tokens)
    if not settings.database_url_configured and not getattr(args, "local_database", False):
        raise StartupFailure(
            "configuration error: DATABASE_URL is required for this mode: the audit trail and approvals live "
            f"there, so it must outlive the process; {DATABASE_EXAMPLES}. For a local try, `make run` uses a SQLite "
            "file in this folder",
            status=2,
        )
    check_database(settings.database_url, "DATABASE_URL")
    return settings


def check_database(url: str, variable: str) -> None:
    """Open `url` and connect once; a URL that is malformed, unsupported or unreachable stops start-up in one line."""
    from storage.db import Database, safe_url
    from storage.errors import NotADatabaseUrl, StorageError, UnsupportedDatabase

    shown = safe_url(url)
    database = None
    try:
        database = Database(url)
        database.connect_once()
    except UnsupportedDatabase as error:
        raise StartupFailure(
            f"{variable} {shown} names a database the bot does not support; use PostgreSQL or SQLite: "
            f"{DATABASE_EXAMPLES}",
            cause=error,
        ) from None
    except NotADatabaseUrl as error:
        raise StartupFailure(f"{variable} is not a database URL; {DATABASE_EXAMPLES}", cause=error) from None
    except ValueError as error:  # Database() refusing another backend (mysql://, …)
        raise StartupFailure(f"{variable} {shown}: {error}; {DATABASE_EXAMPLES}", cause=error) from None
    except (StorageError, ImportError) as error:
        failed = error.__cause__ if isinstance(error, StorageError) and error.__cause__ is not None else error
        reason = _first_line(getattr(failed, "orig", None) or failed)
        raise StartupFailure(
            f"{variable} {shown} cannot be opened ({reason}); check that the database is running and reachable "
            "from here, and its user, password and database name",
            cause=error,
        ) from None
    finally:
        if database is not None:
            database.dispose()


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip()[:300] if lines else type(error).__name__


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _serving_settings(args, "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "VPS_API_TOKEN")
    from bot.server import serve

    return serve(settings, workers=getattr(args, "workers", None), threads=getattr(args, "threads", None))


def cmd_socket(args: argparse.Namespace) -> int:
    settings = _serving_settings(args, "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "VPS_API_TOKEN")
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.server import drain, settle_heap, start_bot

    bot = start_bot(settings)
    settle_heap()
    if settings.health_port:  # one small server; it also serves /metrics when METRICS_PORT is the same port
        from bot.health_server import start_health_server

        shared = settings.metrics_port == settings.health_port
        start_health_server(
            settings.health_port, settings.host, bot.readiness.check, bot.metrics.registry if shared else None
        )
    if settings.metrics_port and settings.metrics_port != settings.health_port:
        from bot.metrics_server import start_server

        start_server(settings.metrics_port, settings.host, bot.metrics.registry)
    app_token = settings.slack_app_token.reveal() if settings.slack_app_token else ""
    log.info("Socket Mode: connecting to Slack")
    handler = SocketModeHandler(bot.app, app_token)
    # SIGTERM (a platform's stop) ends it like Ctrl-C: through the drain below, not mid-call.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _connect_with_backoff(handler)
        threading.Event().wait()  # the connection's own threads serve; this one waits for SIGTERM or Ctrl-C
    except KeyboardInterrupt:
        log.info("Socket Mode: stopping")
    finally:
        with contextlib.suppress(Exception):
            handler.close()  # no new envelopes while what was acknowledged finishes
        drain(bot, settings.drain_seconds)
    return 0


def _connect_with_backoff(handler: Any, first: float = 1.0, longest: float = 60.0) -> None:
    """Connect to Slack, retrying after 1, 2, 4 … up to 60 s while Slack is unreachable (or refuses): the process
    stays up and reports not ready on HEALTH_PORT meanwhile, instead of exiting at start (issue 25 §4)."""
    delay = first
    while True:
        try:
            handler.connect()
            log.info("Socket Mode: connected")
            return
        except Exception as error:  # the type says enough; the message may hold a URL
            log.warning("Socket Mode: could not connect to Slack (%s); retrying in %.0f s", type(error).__name__, delay)
        handler.client.wss_uri = None  # a Socket Mode URL is single-use: ask for a new one next time
        time.sleep(delay)  # SIGTERM interrupts it (KeyboardInterrupt)
        delay = min(delay * 2, longest)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


# The dev tools are a separate top-level package that the production wheel leaves out (see devkit/__init__.py).
DEVKIT_MISSING = (
    "`{command}` needs the development tools (the `devkit` package), which the production install "
    "does not include.\nRun it from a clone of the repository after `make .venv/.installed` "
    "(or `pip install -e '.[dev]'` in the clone), or configure SLACK_BOT_TOKEN to run the bot against Slack."
)


def _devkit_missing(command: str, error: ModuleNotFoundError) -> bool:
    """True (after saying what to install) when `error` is devkit itself missing; other import errors are bugs."""
    if error.name is None or error.name.split(".")[0] != "devkit":
        return False
    raise StartupFailure(DEVKIT_MISSING.format(command=command), status=3) from None


def cmd_shell(args: argparse.Namespace) -> int:
    try:
        from devkit.shell import run_shell
    except ModuleNotFoundError as error:
        if _devkit_missing("shell", error):
            return 3
        raise

    settings = _settings()
    url = getattr(args, "database_url", None) or settings.shell_database_url
    if url:  # the shell's own database otherwise (a fresh file with the simulator): never DATABASE_URL
        check_database(url, "--database-url" if getattr(args, "database_url", None) else "SHELL_DATABASE_URL")
        settings = replace(settings, shell_database_url=url)
    return run_shell(settings)


def cmd_simulate_vps(args: argparse.Namespace) -> int:
    try:
        from devkit.simulator import serve
    except ModuleNotFoundError as error:
        if _devkit_missing("simulate-vps", error):
            return 3
        raise

    print(f"VPS.org simulator on http://{args.host}:{args.port}/api/v1/ (token: {args.token})", file=sys.stderr)
    serve(host=args.host, port=args.port, token=args.token, completion_delay=args.completion_delay)
    return 0


def cmd_checkpoints_from_slack(args: argparse.Namespace, _database_url: str) -> int:
    """`audit checkpoints --from-slack --out FILE`: needs SLACK_BOT_TOKEN with channels:history/groups:history."""
    from slack_sdk.errors import SlackApiError

    from bot.audit_witness import collect_from_slack
    from bot.slack.app import make_web_client

    settings = _settings()
    _require(settings, "SLACK_BOT_TOKEN")
    channel = args.channel or settings.audit_checkpoint_channel
    if not channel:
        print("error: pass --channel or set AUDIT_CHECKPOINT_CHANNEL", file=sys.stderr)
        return 2
    try:
        found, unreadable = collect_from_slack(make_web_client(settings), channel)
    except SlackApiError as error:
        needed = " (the app needs channels:history, or groups:history for a private channel)"
        reason = error.response.get("error")
        print(f"error: Slack refused: {reason}{needed if reason == 'missing_scope' else ''}", file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="ascii") as out:
        out.writelines(checkpoint.to_json() + "\n" for checkpoint in found)
    edited = sum(c.slack_edited for c in found)
    print(f"wrote {len(found)} checkpoints from {channel} to {args.out}; {edited} edited in Slack", file=sys.stderr)
    if unreadable:
        print(
            f"warning: {unreadable} of the bot's messages there look like checkpoints but do not parse", file=sys.stderr
        )
    return 0


def _require(settings: Settings, *names: str) -> None:
    try:
        settings.require(*names)
    except ConfigError as error:
        raise StartupFailure(f"configuration error: {error}", status=2, cause=error) from None


def _count(text: str) -> int:
    """A positive whole number in ASCII digits (argparse's `int` also takes ৪ and fullwidth ４)."""
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= 1024:
        raise argparse.ArgumentTypeError(f"expected a whole number 1..1024 in digits 0-9, got {text[:20]!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snapshot-bot", description="VPS.org snapshots from Slack")
    parser.set_defaults(func=cmd_default)
    from bot.version import version_line

    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser(
        "serve", help="HTTP mode under gunicorn on $PORT (POST /slack/events, GET /livez, GET /readyz)"
    )
    serve.add_argument(
        "--workers", type=_count, default=None, help="gunicorn worker processes (default $WEB_CONCURRENCY or 2)"
    )
    serve.add_argument("--threads", type=_count, default=None, help="threads per worker (default 16)")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("socket", help="Socket Mode (needs SLACK_APP_TOKEN)").set_defaults(func=cmd_socket)
    shell = sub.add_parser("shell", help="the local shell: the whole bot in your terminal")
    shell.add_argument(
        "--database-url",
        metavar="URL",
        help="the shell's database (default $SHELL_DATABASE_URL, else its own local one; never $DATABASE_URL)",
    )
    shell.set_defaults(func=cmd_shell)
    sub.add_parser(
        "run",
        help="what `make run` does: the default, but serving on a local SQLite file when DATABASE_URL is unset",
    ).set_defaults(func=cmd_run)
    sim = sub.add_parser("simulate-vps", help="serve the VPS.org simulator on loopback")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8089)
    sim.add_argument("--token", default="vps_simulator_token")
    sim.add_argument("--completion-delay", type=float, default=5.0, help="seconds until a new snapshot completes")
    sim.set_defaults(func=cmd_simulate_vps)
    mfa = sub.add_parser("mfa", help="authenticators for the step-up before approving (APPROVAL_STEP_UP=totp)")
    mfa_commands = mfa.add_subparsers(dest="mfa_command", required=True, metavar="COMMAND")
    mfa_keygen = mfa_commands.add_parser("keygen", help="write a new MFA_ENCRYPTION_KEY file (32 bytes, base64)")
    mfa_keygen.add_argument("--out", metavar="FILE", required=True, help="where to write the key (mode 0600)")
    mfa_keygen.set_defaults(func=cmd_mfa_keygen)
    from bot.cli import add_commands  # only the parser: the handlers import storage when they run

    audit_commands = add_commands(sub)
    collect = audit_commands.add_parser(
        "checkpoints", help="collect the checkpoints the bot posted to Slack into a JSON Lines file"
    )
    collect.add_argument("--from-slack", action="store_true", required=True, help="read the channel's history")
    collect.add_argument("--out", metavar="FILE", required=True, help="where to write them (replaced)")
    collect.add_argument("--channel", help="default: AUDIT_CHECKPOINT_CHANNEL")
    collect.set_defaults(func=cmd_checkpoints_from_slack)
    return parser


def cmd_mfa_keygen(args: argparse.Namespace) -> int:
    from bot.secret_box import keygen

    path = Path(args.out).expanduser()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        keygen(path)
    except FileExistsError:
        print(f"error: {path} exists; keygen never overwrites a key (choose another --out)", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write {path}: {error.strerror}", file=sys.stderr)
        return 2
    print(f"key written to {path} (mode 0600); keep it out of the database and its backups")
    print(f"set:\n  MFA_ENCRYPTION_KEY={path.resolve()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level, log_format = output_settings()  # leniently: a bad setting must still be reported in the right format
    configure_logging(level, log_format)
    try:
        return _dispatch(args)
    except StartupFailure as failure:
        startup_failure(str(failure), log_format=log_format, level=level, error=failure.cause or failure)
        return failure.status
    except Exception as error:  # a bug or an unforeseen failure: still one line, the traceback only at DEBUG
        startup_failure(
            f"stopped: {type(error).__name__}: {_first_line(error)} (LOG_LEVEL=DEBUG shows where)",
            log_format=log_format,
            level=level,
            error=error,
        )
        if log_format == LogFormat.TEXT and level == "DEBUG":
            traceback.print_exception(error, file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if getattr(args, "command", None) in ("db", "audit"):
        settings = _settings()
        signing = [settings.audit_signing_key.reveal()] if settings.audit_signing_key else []
        args.configured_keys = [*settings.audit_verify_keys, *signing]  # trusted by `audit verify --checkpoints`
        return int(args.func(args, getattr(args, "database_url", None) or settings.database_url))
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
