"""`snapshot-bot --version` and `python -m bot --version` print the installed distribution's version."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_both_spellings_print_the_pyproject_version() -> None:
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    script = Path(sys.executable).with_name("snapshot-bot")
    by_script = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60, check=True)
    by_module = subprocess.run(
        [sys.executable, "-m", "bot", "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert by_script.stdout == by_module.stdout
    assert by_script.stdout.startswith(f"snapshot-bot {expected} (Python ")
