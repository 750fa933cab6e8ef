"""Development tools shared by the tests, the local shell and the benchmarks: a fake Slack Web API on
loopback, a driver that sends Slack-shaped signed requests to the app, and a threaded WSGI server."""

from bot.devtools.fake_slack import (
    FakeEphemeral,
    FakeMessage,
    FakeSlack,
    FakeView,
    SlackCall,
    blocks_text,
    find_action,
    find_button,
)
from bot.devtools.slack_driver import DriverResponse, Sender, SlackDriver, http_sender, wsgi_sender
from bot.devtools.wsgi_server import RunningServer, start_wsgi_in_thread

__all__ = [
    "DriverResponse",
    "FakeEphemeral",
    "FakeMessage",
    "FakeSlack",
    "FakeView",
    "RunningServer",
    "Sender",
    "SlackCall",
    "SlackDriver",
    "blocks_text",
    "find_action",
    "find_button",
    "http_sender",
    "start_wsgi_in_thread",
    "wsgi_sender",
]
