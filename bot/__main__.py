"""`python -m bot [serve|socket|shell|simulate-vps|db|audit]` — with no command: the right mode for the settings.

No Slack tokens configured → the local shell against the built-in VPS.org simulator; tokens → HTTP mode (or
Socket Mode when SLACK_APP_TOKEN is set).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from bot.config import ConfigError, Settings, load_settings
from bot.logging_setup import configure_logging

log = logging.getLogger("bot")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        print(f"snapshot-bot: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_default(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.slack_bot_token is None:
        return cmd_shell(args)
    if settings.slack_app_token is not None:
        return cmd_socket(args)
    return cmd_serve(args)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    _require(settings, "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "VPS_API_TOKEN")
    from bot.server import serve

    return serve(settings, workers=getattr(args, "workers", None), threads=getattr(args, "threads", None))


def cmd_socket(args: argparse.Namespace) -> int:
    settings = _settings()
    _require(settings, "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "VPS_API_TOKEN")
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
    "snapshot-bot: `{command}` needs the development tools (the `devkit` package), which the production install "
    "does not include.\nRun it from a clone of the repository after `make .venv/.installed` "
    "(or `pip install -e '.[dev]'` in the clone), or configure SLACK_BOT_TOKEN to run the bot against Slack."
)


def _devkit_missing(command: str, error: ModuleNotFoundError) -> bool:
    """True (after saying what to install) when `error` is devkit itself missing; other import errors are bugs."""
    if error.name is None or error.name.split(".")[0] != "devkit":
        return False
    print(DEVKIT_MISSING.format(command=command), file=sys.stderr)
    return True


def cmd_shell(args: argparse.Namespace) -> int:
    try:
        from devkit.shell import run_shell
    except ModuleNotFoundError as error:
        if _devkit_missing("shell", error):
            return 3
        raise

    return run_shell(_settings())


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
        print(f"snapshot-bot: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


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
        "--workers", type=int, default=None, help="gunicorn worker processes (default $WEB_CONCURRENCY or 2)"
    )
    serve.add_argument("--threads", type=int, default=None, help="threads per worker (default 16)")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("socket", help="Socket Mode (needs SLACK_APP_TOKEN)").set_defaults(func=cmd_socket)
    sub.add_parser("shell", help="the local shell: the whole bot in your terminal").set_defaults(func=cmd_shell)
    sim = sub.add_parser("simulate-vps", help="serve the VPS.org simulator on loopback")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8089)
    sim.add_argument("--token", default="vps_simulator_token")
    sim.add_argument("--completion-delay", type=float, default=5.0, help="seconds until a new snapshot completes")
    sim.set_defaults(func=cmd_simulate_vps)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level, log_format = "INFO", "text"
    with contextlib.suppress(ConfigError):
        settings = load_settings()
        level, log_format = settings.log_level, settings.log_format
    configure_logging(level, log_format)
    if getattr(args, "command", None) in ("db", "audit"):
        settings = _settings()
        signing = [settings.audit_signing_key.reveal()] if settings.audit_signing_key else []
        args.configured_keys = [*settings.audit_verify_keys, *signing]  # trusted by `audit verify --checkpoints`
        return int(args.func(args, settings.database_url))
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
