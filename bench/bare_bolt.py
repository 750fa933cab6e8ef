"""The acknowledgement baseline: a bare Bolt app whose `/snapshot` listener only acks.

Served by gunicorn with the same settings `python -m bot serve` uses (bot/server.py), and with the bot's listener
executor, so the difference between the two is what the bot itself adds to an acknowledgement: its middleware,
parsing, queueing and audit hooks.
Run as `python -m bench.bare_bolt` with PORT, SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_API_URL set.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient


def create_wsgi_app() -> Any:
    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    # The bot's listener executor (bot/runtime.py Core.listeners: 32 threads, not Bolt's default 10), as a
    # plain pool: importing the bot's class would add its imports to this baseline's footprint.
    app = App(
        client=client,
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        listener_executor=ThreadPoolExecutor(max_workers=32, thread_name_prefix="listener"),
    )

    @app.command("/snapshot")
    def ack_only(ack: Ack) -> None:
        ack()

    handler = SlackRequestHandler(app, path="/slack/events")

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/healthz":  # the same readiness probe the bench uses on the bot
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        return handler(environ, start_response)

    return wsgi


def main() -> int:
    from gunicorn.app.base import BaseApplication

    class BareServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            # Keep in step with bot/server.py serve(): same workers, threads and timeouts. The worker class is
            # gunicorn's own gthread, as anyone would serve Bolt: the bot's buffering worker (bot/http_worker.py)
            # and its 1 ms switch interval are part of what the bot adds, so the ratio includes them.
            cfg = {
                "bind": f"0.0.0.0:{os.environ['PORT']}",
                "workers": int(os.environ.get("WEB_CONCURRENCY", "2")),
                "worker_class": "gthread",
                "threads": int(os.environ.get("BENCH_THREADS", "16")),
                "timeout": 60,
                "graceful_timeout": 30,
                "keepalive": 5,
                "accesslog": None,
                "loglevel": "warning",
            }
            for key, value in cfg.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_wsgi_app()

    BareServer().run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
