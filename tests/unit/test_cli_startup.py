"""`python -m bot --help` stays quick: it lists every command without importing Slack, the database or HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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


BROKEN_INSTALL = """
import sys
class Lost:  # as if the install had lost sqlalchemy: importing it fails as a missing package does
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "sqlalchemy":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Lost())
from bot.__main__ import main
try:
    main(["--help"])
except SystemExit as stop:
    assert stop.code == 0, stop.code
print("---")
main(["audit", "verify"])
"""


def test_a_broken_import_never_hides_a_command_and_fails_the_command_loudly(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", BROKEN_INSTALL],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    listed = done.stdout.split("---")[0]
    for command in ("shell", "db", "audit"):
        assert command in listed
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("snapshot-bot: `audit verify` cannot run: No module named 'sqlalchemy")
    ), done.stderr
    assert "installation is incomplete" in done.stderr
    assert list(tmp_path.iterdir()) == []  # and no database was created on the way
