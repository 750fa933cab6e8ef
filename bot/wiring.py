"""Builds the whole bot (services, Web API client, Bolt app, WSGI app) from Settings."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import httpx
from slack_bolt import App
from slack_sdk import WebClient

from bot.audit_witness import Witness
from bot.config import Settings
from bot.runtime import Services, build_services
from bot.slack.app import create_app, make_web_client, slack_group_resolver
from bot.slack.home import AppHome
from bot.slack.notify import Notifier
from bot.slack.progress import ProgressTracker
from bot.slack.wsgi import create_wsgi_app
from bot.usecases.approvals import ApprovalService
from bot.usecases.recovery import Recovery
from bot.usecases.tracking import Tracker
from storage.db import Database


@dataclass
class Bot:
    settings: Settings
    services: Services
    client: WebClient
    app: App
    wsgi: Any

    def close(self) -> None:
        background = self.services.extras.get("background")
        if background is not None:
            background.stop()
        witness = self.services.extras.get("witness")
        if witness is not None:
            # After the drain, so the shutdown checkpoint covers the outcome rows of the work just finished.
            with contextlib.suppress(Exception):
                witness.stop(final=True)
        tracker = self.services.extras.get("tracker")
        if tracker is not None:
            # Hand tracked operations back at once, so a restarted or sibling process resumes them immediately.
            with contextlib.suppress(Exception):
                tracker.release()
        self.services.close()


def build_bot(
    settings: Settings,
    *,
    vps_transport: httpx.BaseTransport | None = None,
    database: Database | None = None,
    verify_token: bool = True,
) -> Bot:
    client = make_web_client(settings)
    services = build_services(
        settings, resolve_group=slack_group_resolver(client), vps_transport=vps_transport, database=database
    )
    approvals = services.extras["approvals"] = ApprovalService.from_services(services)
    # One notifier for the whole process, so per-channel pacing covers every message the bot posts on its own.
    notifier = services.extras["notifier"] = Notifier(client, settings.notify_channel)
    services.extras["tracker"] = ProgressTracker(
        Tracker.from_services(services), notifier, request_channel=lambda rid: approvals.get(rid).channel_id
    )
    services.extras["witness"] = Witness.from_settings(services.db, settings, notifier)
    services.extras["home"] = AppHome(services)
    services.extras["recovery"] = Recovery.from_services(services)
    app = create_app(settings, services, client, verify_token=verify_token)
    return Bot(settings=settings, services=services, client=client, app=app, wsgi=create_wsgi_app(app, services))
