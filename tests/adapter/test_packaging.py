"""Packaging: the production wheel holds the bot and storage only, never the dev tools (fake Slack, Slack driver,
VPS.org simulator with its fault knobs, local shell); the dev install still makes `devkit` importable; and a
production install without devkit says what to install instead of failing with a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Never copied into the build: local state that is not part of a clone.
_NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "*.db"
)
# Stands in for a production install: the interpreter cannot find `devkit` at all.
_WITHOUT_DEVKIT = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoDevkit(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "devkit":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoDevkit())
    """
)


def _clean_env() -> dict[str, str]:
    """This environment without Slack or VPS.org settings, so `python -m bot` picks the local shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VPS_", "DATABASE_URL"))}


def test_the_wheel_contains_bot_and_storage_but_no_dev_tools(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_IN_A_CLONE)  # built from a copy: no build/ left in the worktree
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "dist"), "."],
        cwd=source,
        check=True,
        timeout=300,
    )
    [wheel] = (tmp_path / "dist").glob("snapshot_bot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    assert "bot/__main__.py" in names and "bot/vps/client.py" in names and "storage/audit.py" in names
    dev_tools = [
        name
        for name in names
        if name.startswith(("devkit/", "bot/devtools/", "bot/shell/"))
        or any(word in Path(name).name for word in ("fake", "simulator", "slack_driver"))
    ]
    assert dev_tools == []
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"bot", "storage"}


def test_the_dev_install_makes_devkit_importable_from_anywhere(tmp_path: Path) -> None:
    # Outside the repository, so only the installed project (not the working directory) can provide it.
    result = subprocess.run(
        [sys.executable, "-c", "import devkit.simulator, devkit.fake_slack, devkit.shell; print('ok')"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_production_modules_import_without_devkit(tmp_path: Path) -> None:
    code = _WITHOUT_DEVKIT + "import bot.__main__, bot.wiring, bot.server, bot.runtime, bot.cli\nprint('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_shell_without_devkit_says_what_to_install(tmp_path: Path) -> None:
    for argv in (["shell"], [], ["simulate-vps"]):  # [] is `make run` without Slack tokens: the shell
        code = _WITHOUT_DEVKIT + f"from bot.__main__ import main\nraise SystemExit(main({argv!r}))"
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0, argv
        assert "Traceback" not in result.stderr, result.stderr
        assert "needs the development tools (the `devkit` package)" in result.stderr
        assert "make .venv/.installed" in result.stderr and "pip install -e '.[dev]'" in result.stderr
