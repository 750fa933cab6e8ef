"""`python -m bot --help` stays quick: it lists every command without importing Slack, the database or HTTP."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("slack_bolt", "slack_sdk", "sqlalchemy", "httpx", "cryptography", "alembic", "storage")

PROBE = """
import sys
from bot.__main__ import main
try:
    main(["--help"])
except SystemExit as stop:
    assert stop.code == 0, stop.code
print("imported:", ",".join(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def test_help_lists_every_command_without_importing_heavy_modules() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("imported:"), done.stdout.splitlines()[-1]
    for command in ("serve", "socket", "shell", "simulate-vps", "db", "audit"):
        assert command in done.stdout


def test_an_operator_command_imports_its_handlers_when_it_runs() -> None:
    from bot.__main__ import build_parser

    args = build_parser().parse_args(["audit", "verify"])
    assert args.func.__name__ == "audit_verify"
    import bot.cli.operator  # the handlers import cleanly (a broken import fails here and in the command)

    assert callable(bot.cli.operator.audit_verify)
