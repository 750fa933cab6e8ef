"""Start-up as a new operator meets it (issue 24 §3, §6, §7; issue 25 §5): `python -m bot` run as a process.

Every failure that must stop the process is one line on stderr — text, or one JSON object with LOG_FORMAT=json —
saying what is wrong and what to do, never a secret and never a traceback unless LOG_LEVEL=DEBUG asks for it.
`serve` and `socket` refuse to run without DATABASE_URL; the shell never reads it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOKENS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-startupTESTtoken",
    "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
    "SLACK_APP_TOKEN": "xapp-1-A111-222-startupTESTapp",
    "VPS_API_TOKEN": "vps_startup_test_token_1234",
    "SLACK_API_URL": "http://127.0.0.1:9/api/",  # nothing leaves the machine
    "VPS_API_URL": "http://127.0.0.1:9/api/v1/",
}
SECRETS = ("startupTESTtoken", "0123456789abcdef", "startupTESTapp", "startup_test_token")
BAD_DATABASES = {
    "malformed": "postgres//nohost",
    "unsupported": "mysql://bot:hunter2pw@127.0.0.1/bot",
    "unreachable": "postgresql+psycopg://bot:hunter2pw@127.0.0.1:9/bot",
}


def bot(tmp_path: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in an empty folder (no stray .env), with only `env` (and PATH) set."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "HOME": str(tmp_path), **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not any(secret in done.stderr for secret in SECRETS)
    return lines[0]


def one_json_line(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    line = one_line(done)
    record = json.loads(line)
    assert record["level"] == "ERROR"
    return record


@pytest.mark.parametrize("command", ["serve", "socket"])
def test_serve_and_socket_refuse_without_database_url(tmp_path: Path, command: str) -> None:
    done = bot(tmp_path, command, **TOKENS)
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("snapshot-bot: configuration error: DATABASE_URL is required")
    assert "postgresql+psycopg://" in line and "sqlite:////" in line and "one replica" in line
    assert list(tmp_path.iterdir()) == []  # no snapshot-bot.db was made on the way


@pytest.mark.parametrize("command", ["serve", "socket"])
@pytest.mark.parametrize("kind", list(BAD_DATABASES))
def test_a_bad_database_url_is_one_line_saying_what_to_do(tmp_path: Path, command: str, kind: str) -> None:
    done = bot(tmp_path, command, DATABASE_URL=BAD_DATABASES[kind], **TOKENS)
    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith("snapshot-bot: DATABASE_URL") and "hunter2pw" not in line
    assert {"malformed": "postgresql+psycopg://", "unsupported": "sqlite:///", "unreachable": "reachable"}[kind] in line


@pytest.mark.parametrize("kind", list(BAD_DATABASES))
def test_the_same_as_one_json_object_with_the_traceback_only_at_debug(tmp_path: Path, kind: str) -> None:
    done = bot(tmp_path, "serve", DATABASE_URL=BAD_DATABASES[kind], LOG_FORMAT="json", **TOKENS)
    record = one_json_line(done)
    assert "DATABASE_URL" in record["message"] and "exception" not in record
    debug = bot(tmp_path, "serve", DATABASE_URL=BAD_DATABASES[kind], LOG_FORMAT="json", LOG_LEVEL="DEBUG", **TOKENS)
    lines = [json.loads(line) for line in debug.stderr.splitlines() if line.strip()]  # every line is JSON
    assert "Traceback" in lines[-1]["exception"] and "hunter2pw" not in debug.stderr


def test_the_shell_names_a_bad_database_in_one_line(tmp_path: Path) -> None:
    done = bot(tmp_path, "shell", "--database-url", BAD_DATABASES["unreachable"])
    assert done.returncode == 1
    assert one_line(done).startswith("snapshot-bot: --database-url postgresql+psycopg://bot:***@127.0.0.1:9/bot")


def test_a_token_pasted_into_a_setting_is_never_echoed_even_in_json(tmp_path: Path) -> None:
    pasted = "xoxb-9999-8888-PastedIntoTheWrongPlace"
    done = bot(tmp_path, "serve", SNAPSHOT_RATE_LIMIT=pasted, LOG_FORMAT="json", **TOKENS)
    assert done.returncode == 2
    record = one_json_line(done)
    assert record["message"].startswith("configuration error: SNAPSHOT_RATE_LIMIT is malformed")
    assert "PastedInto" not in done.stderr and "9999" not in done.stderr


def test_an_unreadable_signing_key_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    done = bot(tmp_path, "serve", AUDIT_SIGNING_KEY=str(tmp_path / "missing.pem"), **TOKENS)
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("snapshot-bot: configuration error: AUDIT_SIGNING_KEY") and "audit keygen" in line


def test_the_checkpoint_folder_is_created_or_start_up_stops_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = bot(tmp_path, "serve", AUDIT_CHECKPOINT_FILE=str(blocker / "sub" / "checkpoints.jsonl"), **TOKENS)
    assert done.returncode == 2
    assert "AUDIT_CHECKPOINT_FILE: cannot create the folder" in one_line(done)

    folder = tmp_path / "state" / "snapshot-bot"
    done = bot(tmp_path, "db", "upgrade", AUDIT_CHECKPOINT_FILE=str(folder / "checkpoints.jsonl"))
    assert done.returncode == 0, done.stderr
    assert folder.is_dir()


def test_audit_verify_accepts_the_database_url_it_suggests(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    assert bot(tmp_path, "db", "upgrade", "--database-url", url).returncode == 0
    done = bot(tmp_path, "audit", "verify", "--database-url", url, DATABASE_URL="sqlite:///elsewhere.db")
    assert done.returncode == 0, done.stderr
    assert "audit chain intact: 0 events" in done.stdout and f"database: {url}" in done.stderr


def test_the_operator_cli_reads_dotenv_like_the_bot(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'from-dotenv.db'}"
    (tmp_path / ".env").write_text(f"DATABASE_URL={url}\n")
    assert bot(tmp_path, "db", "upgrade").returncode == 0
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "audit", "verify"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"database: {url}" in done.stderr


def test_the_shell_never_reads_database_url(tmp_path: Path) -> None:
    production = tmp_path / "production.db"
    done = bot(tmp_path, "shell", stdin="/snapshot list 12345\nquit\n", DATABASE_URL=f"sqlite:///{production}")
    assert done.returncode == 0, done.stderr
    assert "a fresh SQLite file, deleted when you quit" in done.stderr + done.stdout
    assert not production.exists()


def test_the_shell_uses_shell_database_url_and_says_so(tmp_path: Path) -> None:
    own = tmp_path / "shell-own.db"
    done = bot(
        tmp_path,
        "shell",
        stdin="/snapshot list 12345\nquit\n",
        DATABASE_URL=f"sqlite:///{tmp_path / 'production.db'}",
        SHELL_DATABASE_URL=f"sqlite:///{own}",
    )
    assert done.returncode == 0, done.stderr
    assert f"Database: sqlite:///{own}" in done.stderr + done.stdout
    assert own.exists() and not (tmp_path / "production.db").exists()


def test_make_run_with_tokens_uses_a_local_database_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    with socket.socket() as probe:  # a free port for gunicorn (PORT=0 is not a setting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), **TOKENS}
    env |= {"PORT": str(port), "HOST": "127.0.0.1", "LOG_FORMAT": "json"}
    env.pop("SLACK_APP_TOKEN")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    database = tmp_path / "snapshot-bot.db"
    try:
        deadline = time.monotonic() + 60
        while not (database.exists() and "DATABASE_URL is not set" in log.read_text()) and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        _stop(proc)
    said = log.read_text()  # whole now: the process has ended
    messages = [json.loads(line)["message"] for line in said.splitlines() if line.strip()]  # every line is JSON
    assert "DATABASE_URL is not set: `make run` keeps the bot's data in sqlite:///snapshot-bot.db" in messages[0]
    assert database.exists()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started (gunicorn and its workers), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_keygen_makes_the_key_folder_and_warns_inside_a_checkout(tmp_path: Path) -> None:
    out = tmp_path / "home" / ".config" / "snapshot-bot" / "audit-signing.pem"
    done = bot(tmp_path, "audit", "keygen", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.is_file() and (out.parent.stat().st_mode & 0o777) == 0o700 and "warning" not in done.stdout

    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    done = bot(checkout, "audit", "keygen", "--out", "audit-signing.pem")
    assert done.returncode == 0, done.stderr
    assert "is inside a git checkout; move it out" in done.stdout


def test_pem_files_are_git_ignored() -> None:
    assert "*.pem" in (REPO / ".gitignore").read_text().splitlines()


def test_numbers_on_the_command_line_are_ascii_digits_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    assert bot(tmp_path, "db", "upgrade", "--database-url", url).returncode == 0
    done = bot(tmp_path, "audit", "export", "--server", "১২৩৪৫", "--database-url", url)
    assert done.returncode == 2 and "digits 0-9" in done.stderr and done.stdout == ""
    done = bot(tmp_path, "serve", "--workers", "４", DATABASE_URL=url, **TOKENS)
    assert done.returncode == 2 and "digits 0-9" in done.stderr
