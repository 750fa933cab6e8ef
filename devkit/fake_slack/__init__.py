"""Slack's Web API and response_url endpoint, faked on loopback for tests, the local shell and benchmarks.

Point `slack_sdk.WebClient(base_url=fake.api_url)` (or SLACK_API_URL) at a started `FakeSlack` and the bot
talks to it exactly as it talks to Slack: same HTTP shapes, same `{"ok": false, "error": ...}` answers,
429s with Retry-After when asked. Every call is recorded, and the message/ephemeral/view state it implies
is kept, so a test can assert what a user would see ("the approval message now says Approved") and what
Slack received.

The package, one idea per module: `records` (what is kept), `blocks` (queries over Block Kit), `requests`
(parsing a request as Slack does), `validation` (the Block Kit limits Slack enforces), `api` (the server, its
HTTP entry and inspection) and `methods` (the Web API methods).

Fidelity choices worth knowing:
- Only the bot token is accepted; anything else answers `invalid_auth` (missing token: `not_authed`). The
  app-level token (`xapp-…`) is accepted by `apps.connections.open` only, and only in the Authorization header;
  each token used for the other's methods answers `not_allowed_token_type`, as on Slack.
- `apps.connections.open` answers with a URL of the attached fake Socket Mode server (`attach_socket_mode`);
  without one it answers `access_denied`.
- Posting to a user id (U…/W…) lands in that user's DM channel "D…" and the answer says so, as on Slack; a
  bot that then updates with the user id instead of the returned channel gets `message_not_found`.
- Block Kit is lightly validated (block count, duplicate block_id, modal title length, value lengths): the
  limits that real Slack enforces and that are easy to trip silently.
- `users.info` answers any well-formed user id with a made-up profile unless `users` has an entry for it.
- It is also the workspace directory `SlackDriver` encodes typed `@name`/`#name` with (`user_id`, `channel_id`,
  `usergroup_id`): only users and channels in `users`/`channels` (by their "name") and user groups in
  `usergroup_handles` exist there, as only existing ones become mentions in Slack.
- A channel registered in `channels` with `"is_member": False` is one the bot has not joined: posting there
  answers `not_in_channel`, as Slack does for a bot with only `chat:write`.
"""

from devkit.fake_slack.api import FakeSlack
from devkit.fake_slack.blocks import blocks_text, find_action, find_button
from devkit.fake_slack.records import RESPONSE_URL_METHOD, FakeEphemeral, FakeMessage, FakeView, SlackCall

__all__ = [
    "RESPONSE_URL_METHOD",
    "FakeEphemeral",
    "FakeMessage",
    "FakeSlack",
    "FakeView",
    "SlackCall",
    "blocks_text",
    "find_action",
    "find_button",
]
