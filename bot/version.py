"""The bot's version: the installed distribution's (pyproject.toml's `version`), for `--version` and the
`snapshot_bot_build_info` metric. A source tree that was never installed says `unknown` rather than guessing."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version

DISTRIBUTION = "snapshot-bot"


def version() -> str:
    try:
        return distribution_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def version_line() -> str:
    """`snapshot-bot 0.1.0 (Python 3.12.1)`: what `--version` prints."""
    return f"{DISTRIBUTION} {version()} (Python {platform.python_version()})"
