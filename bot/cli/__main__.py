"""`python -m bot.cli [--database-url URL] audit verify`: the operator commands without the bot's settings."""

import sys

from bot.cli import main

sys.exit(main())
