"""The local shell: `python -m bot shell` (and `make run` without Slack tokens) runs the whole bot in a
terminal, with Slack played by an in-process fake and VPS.org by the simulator unless configured otherwise.

One idea per module: `world` (booting the fake world), `forms` (questions and modal forms), `transcript`
(rendering what the bot says), `render` (Block Kit as terminal text) and `repl` (the loop)."""

from devkit.shell.repl import Shell, run_shell
from devkit.shell.world import DEMO_USERS, user_id_for

__all__ = ["DEMO_USERS", "Shell", "run_shell", "user_id_for"]
