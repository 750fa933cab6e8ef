"""The local shell: `python -m bot shell` (and `make run` without Slack tokens) runs the whole bot in a
terminal, with Slack played by an in-process fake and VPS.org by the simulator unless configured otherwise."""

from bot.shell.repl import DEMO_USERS, Shell, run_shell, user_id_for

__all__ = ["DEMO_USERS", "Shell", "run_shell", "user_id_for"]
