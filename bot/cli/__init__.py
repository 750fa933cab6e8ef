"""Operator command lines that live beside the bot (`python -m bot db …`, `python -m bot audit …`)."""

from bot.cli.operator import add_commands, main

__all__ = ["add_commands", "main"]
