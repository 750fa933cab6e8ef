"""Slack's ids, recognised in one place: users (U…/W…), user groups (S…), channels (C…/G…/D…).

Rules it keeps: an id is its prefix letter then at least two upper-case letters or digits, nothing else; a user
may be typed as `U…`/`@U…` or arrive as Slack's mention `<@U…>` / `<@U…|name>`. Used by the settings (access
lists, channels), the access policy and the command parser, so the three can never disagree about what an id is.
(bot/mrkdwn.py checks ids again, with a length cap, before it writes a mention into a message.)
"""

from __future__ import annotations

import re

_REST = "[A-Z0-9]{2,}"

USER_ID = re.compile(rf"^[UW]{_REST}$")
GROUP_ID = re.compile(rf"^S{_REST}$")
CHANNEL_ID = re.compile(rf"^[CGD]{_REST}$")
# In typed command text: Slack's escaped mention (its id in group 1), or an id with an optional "@".
USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
TYPED_USER_ID = re.compile(rf"^@?([UW]{_REST})$")
