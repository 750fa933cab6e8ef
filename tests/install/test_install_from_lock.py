"""What the image's build does, done here without a container daemon: a fresh Python 3.12 venv gets
requirements.lock with `--require-hashes` (wheels only) and the project's wheel with `--no-deps`; from that
install `snapshot-bot --version`, `db upgrade` on PostgreSQL and `serve` -> `/readyz` work.

It takes minutes (a venv, a download or cache hit per pinned package, a wheel build), so `make test` skips it;
CI runs it as its own step (.ci/run: SNAPSHOT_INSTALL_CHECK=1).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devkit.fake_slack import FakeSlack
from devkit.local import local_env
from devkit.simulator import VpsSimulator, start_in_thread
from tests.adapter.test_faults_process import eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
WANTED = (3, 12)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        os.environ.get("SNAPSHOT_INSTALL_CHECK") != "1", reason="CI's own step (SNAPSHOT_INSTALL_CHECK=1)"
    ),
    pytest.mark.timeout(900),
]


def python312() -> str:
    """A Python 3.12 interpreter: on PATH, or one pyenv installed (pyenv's shim alone may point nowhere)."""
    candidates = [
        shutil.which("python3.12"),
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12"))),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"], capture_output=True, text=True
        )
        if probe.stdout.strip() == "True":
            return candidate
    pytest.fail("no Python 3.12 found (python3.12 on PATH, or pyenv's ~/.pyenv/versions/3.12*)")


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a fresh 3.12 venv holding the lockfile's packages and the project's wheel, and nothing else."""
    tmp = tmp_path_factory.mktemp("install")
    venv = tmp / "venv"
    run(python312(), "-m", "venv", str(venv))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "install", "--quiet", "--require-hashes", "--only-binary=:all:", "-r", str(ROOT / "requirements.lock"))
    source = tmp / "src"  # the wheel is built from what the image copies in, not from the worktree
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for package in ("bot", "storage"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    run(*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp / "dist"), str(source))
    [wheel] = (tmp / "dist").glob("snapshot_bot-*.whl")
    run(*pip, "install", "--quiet", "--no-deps", str(wheel))
    run(*pip, "check")  # the lockfile satisfies every requirement the wheel declares
    no_devkit = subprocess.run([str(venv / "bin" / "python"), "-c", "import devkit"], capture_output=True, cwd=tmp)
    assert no_devkit.returncode != 0  # what serves below runs without the dev tools
    return venv / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **extra}


def test_version_from_the_installed_console_script(installed: Path) -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = run(str(installed / "snapshot-bot"), "--version", env=clean_env()).stdout
    assert out.startswith(f"snapshot-bot {expected} (Python 3.12.")
    assert run(str(installed / "python"), "-m", "bot", "--version", env=clean_env()).stdout == out


@pytest.fixture
def vps_url() -> Iterator[str]:
    url, stop = start_in_thread(VpsSimulator(completion_delay=3600))
    try:
        yield url
    finally:
        stop()


def test_db_upgrade_then_serve_is_ready(
    installed: Path, tmp_path: Path, postgres_schema_url: str, fake_slack: FakeSlack, vps_url: str
) -> None:
    env = clean_env(DATABASE_URL=postgres_schema_url)
    assert "upgraded to revision" in run(str(installed / "snapshot-bot"), "db", "upgrade", env=env, cwd=tmp_path).stdout
    assert "already up to date" in run(str(installed / "snapshot-bot"), "db", "upgrade", env=env, cwd=tmp_path).stdout

    port = free_port()
    serve_env = clean_env(
        **local_env(fake_slack, VpsSimulator(), postgres_schema_url, vps_url=vps_url),
        PORT=str(port),
        HOST="127.0.0.1",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(installed / "snapshot-bot"), "serve", "--workers", "1", "--threads", "4"],
            cwd=tmp_path, env=serve_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2, trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(lambda: ready() or proc.poll() is not None, "serve from the install to be ready", timeout=90)
        assert proc.poll() is None, log.read_text(errors="replace")
        assert httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2, trust_env=False).status_code == 200
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
