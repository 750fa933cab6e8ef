"""Operator command lines that live beside the bot (`python -m bot db …`, `python -m bot audit …`)."""

from collections.abc import Sequence

from bot.cli.commands import add_commands


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.cli …` (imports the handlers, and with them SQLAlchemy and storage)."""
    from bot.cli.operator import main as run

    return run(argv)


__all__ = ["add_commands", "main"]
