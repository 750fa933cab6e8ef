"""The composition root: the one place that builds the bot from Settings, once, and wires it together.

It builds the Core (storage, VPS.org client, use cases, pools; bot/runtime.py), then the Slack side on top of it
(Web API client, notifier, card presenter, App Home, announcer; bot/slack/side.py), then the Bolt and WSGI apps.
Every collaborator is passed as a constructor argument here; nothing is looked up or created on first use later.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from slack_bolt import App

from bot.audit_witness import Witness
from bot.auditing import audit_log
from bot.background import Ticker
from bot.config import Settings
from bot.metrics import Metrics
from bot.readiness import Readiness, SlackAuthCheck
from bot.runtime import BackgroundWork, Core
from bot.slack.announcer import SlackAnnouncer
from bot.slack.app import create_app, make_web_client, slack_group_resolver
from bot.slack.home import AppHome
from bot.slack.notify import Notifier
from bot.slack.progress import ProgressTracker
from bot.slack.side import SlackSide
from bot.slack.wsgi import create_wsgi_app
from bot.step_up_wiring import build_step_up, step_up_kinds
from bot.usecases.access import AccessPolicy, GroupResolver
from bot.usecases.approval_reminders import ReminderPolicy, Reminders
from bot.usecases.approvals import ApprovalService, RequestKind
from bot.usecases.audit_view import AuditReader
from bot.usecases.create_help import CreateHelp
from bot.usecases.guard import Guard, count_mutations, oldest_counted_mutation
from bot.usecases.home import HomeQueries
from bot.usecases.listing_cache import ListingCache
from bot.usecases.pending import PendingQueries
from bot.usecases.pins import PinService
from bot.usecases.ratelimit import RateLimiter
from bot.usecases.read_limit import ReadLimit
from bot.usecases.recovery import Recovery, stale_after_for
from bot.usecases.schedule_runner import ScheduleRunner
from bot.usecases.schedules import ScheduleService
from bot.usecases.server_state import ServerStates
from bot.usecases.snapshots import SnapshotService
from bot.usecases.tracking import Tracker
from bot.vps.client import VpsClient
from bot.vps.observed_transport import ObservedTransport
from bot.vps.proxy import environment_proxy
from storage.approval_reminders import ApprovalNudges
from storage.db import Database
from storage.deliveries import DeliveryLog
from storage.pins import Pins
from storage.schedules import Schedules


@dataclass
class Bot:
    settings: Settings
    core: Core
    slack: SlackSide
    app: App
    wsgi: Any
    witness: Witness | None  # None when AUDIT_SIGNING_KEY is unset
    metrics: Metrics
    readiness: Readiness
    slack_check: SlackAuthCheck
    ticker: Ticker | None = None  # set by start_background

    def close(self) -> None:
        self.slack_check.stop()
        if self.ticker is not None:
            self.ticker.stop()
        if self.witness is not None:
            # After the drain, so the shutdown checkpoint covers the outcome rows of the work just finished.
            with contextlib.suppress(Exception):
                self.witness.stop(final=True)
        with contextlib.suppress(Exception):  # the last lines, still waiting for their channel's slot
            self.slack.notifier.close()
        # Hand tracked operations back at once, so a restarted or sibling process resumes them immediately.
        with contextlib.suppress(Exception):
            self.core.tracking.release()
        self.core.close()


def build_core(
    settings: Settings,
    *,
    resolve_group: GroupResolver | None = None,
    vps_transport: httpx.BaseTransport | None = None,
    database: Database | None = None,
    upgrade: bool = True,
    metrics: Metrics | None = None,
) -> Core:
    db = database or Database(settings.database_url)
    if upgrade and db.needs_upgrade():
        db.upgrade()
    audit = audit_log(db, on_append=metrics.audit_appended if metrics else None)
    token = settings.vps_api_token.reveal() if settings.vps_api_token else ""
    if metrics is not None:  # every VPS.org request is counted and timed on its way out
        vps_transport = ObservedTransport(
            vps_transport or httpx.HTTPTransport(proxy=environment_proxy(settings.vps_api_url)),
            metrics.vps_call,
            httpx.URL(settings.vps_api_url).path,
        )
    vps = VpsClient(settings.vps_api_url, token, timeout=settings.vps_timeout_seconds, transport=vps_transport)
    access = AccessPolicy.from_settings(settings, resolve_group)
    limiter = RateLimiter(
        settings.rate_limit,
        count_mutations(audit),
        oldest_in_window=oldest_counted_mutation(audit, settings.rate_limit.count) if settings.rate_limit else None,
    )
    guard = Guard(access, limiter, audit, extra_channels=(settings.approval_channel,))
    # The one cache of listings (App Home, /snapshot list, the server picker), shared per workspace; the bot's own
    # writes make it stale at once.
    listings = ListingCache(ttl=settings.read_cache_seconds, limit=ReadLimit(settings.read_limit))
    vps.on_write(listings.invalidate)
    snapshots = SnapshotService(
        vps=vps,
        audit=audit,
        guard=guard,
        listings=listings,
        warn_last_slot=settings.undo_slots_reserved > 0,
        pins=Pins(db),
    )
    stale_after = stale_after_for(settings.vps_timeout_seconds, settings.recovery_after_seconds)
    approvals = ApprovalService(
        db=db,
        audit=audit,
        guard=guard,
        snapshots=snapshots,
        vps=vps,
        ttl=timedelta(minutes=settings.restore_approval_ttl_minutes),
        approvals_required=settings.restore_approvals_required,
        required_for=settings.approval_required_for,
        reason_required=settings.restore_reason_required,
        stale_after=stale_after,
        recheck_deadline=timedelta(seconds=settings.recheck_deadline_seconds),
        claim_ttl=timedelta(seconds=settings.claim_ttl_seconds),
        server_states=ServerStates(vps),
        safety_mode=settings.restore_safety_snapshot,
        safety_timeout=timedelta(seconds=settings.restore_safety_timeout_seconds),
        safety_poll_seconds=settings.poll_seconds,
        undo_slots_reserved=settings.undo_slots_reserved,
        step_up_for=step_up_kinds(settings),
    )
    mfa, step_up = build_step_up(settings, db=db, audit=audit, guard=guard, approvals=approvals)
    tracking = Tracker(
        db=db,
        audit=audit,
        vps=vps,
        poll_seconds=settings.poll_seconds,
        timeout=timedelta(minutes=settings.track_timeout_minutes),
    )
    recovery = Recovery(db=db, audit=audit, stale_after=stale_after)
    schedule_store = Schedules(db)
    schedules = ScheduleService(
        store=schedule_store,
        vps=vps,
        audit=audit,
        guard=guard,
        zone=settings.snapshot_timezone,
        min_interval=timedelta(minutes=settings.schedule_min_interval_minutes),
        deletes_need_approval=RequestKind.DELETE in settings.approval_required_for,
        approvals=approvals,
        reserved_slots=settings.undo_slots_reserved,
    )
    schedule_runner = ScheduleRunner(
        store=schedule_store,
        snapshots=snapshots,
        vps=vps,
        audit=audit,
        tracking=tracking,
        zone=settings.snapshot_timezone,
        owner=tracking.owner,
        deletes_need_approval=RequestKind.DELETE in settings.approval_required_for,
        reserved_slots=settings.undo_slots_reserved,
        after_delete=approvals,
    )
    return Core(
        settings=settings,
        db=db,
        audit=audit,
        vps=vps,
        access=access,
        guard=guard,
        snapshots=snapshots,
        approvals=approvals,
        tracking=tracking,
        recovery=recovery,
        home=HomeQueries(
            access=access,
            vps=vps,
            audit=audit,
            approvals=approvals,
            tracking=tracking,
            schedules=schedules,
            listings=listings,
            pinned=snapshots.pinned,
        ),
        pending=PendingQueries(guard=guard, access=access, approvals=approvals, recovery=recovery),
        create_help=CreateHelp(vps=vps, guard=guard, listings=listings),
        work=BackgroundWork(
            settings.worker_threads,
            settings.work_queue_limit,
            on_shed=metrics.work_shed if metrics else None,
        ),
        deliveries=DeliveryLog(db),
        audit_reader=AuditReader(audit, guard),
        schedules=schedules,
        schedule_runner=schedule_runner,
        reminders=Reminders(
            ledger=approvals.ledger,
            nudges=ApprovalNudges(db),
            access=access,
            policy=ReminderPolicy(
                remind_every=timedelta(seconds=settings.approval_remind_seconds),
                remind_max=settings.approval_remind_max,
                escalate_after=timedelta(seconds=settings.approval_escalate_seconds),
                escalate_to=settings.approval_escalate_to,
            ),
            owner=tracking.owner,
        ),
        mfa=mfa,
        step_up=step_up,
        pins=PinService(store=snapshots.pins or Pins(db), snapshots=snapshots, audit=audit, guard=guard),
    )


def build_bot(
    settings: Settings,
    *,
    vps_transport: httpx.BaseTransport | None = None,
    database: Database | None = None,
    verify_token: bool = True,
) -> Bot:
    metrics = Metrics()
    client = make_web_client(settings, on_error=metrics.slack_error)
    core = build_core(
        settings,
        resolve_group=slack_group_resolver(client),
        vps_transport=vps_transport,
        database=database,
        metrics=metrics,
    )
    # One notifier for the whole process, so per-channel pacing covers every message the bot posts on its own;
    # its client leaves 429s to it (bot/slack/retry.py: one layer retries each call).
    notifier_client = make_web_client(settings, rate_limits=False, on_error=metrics.slack_error)
    # Its lines never hold a worker thread waiting for a busy channel's slot (hand_off): an approval is not delayed.
    notifier = Notifier(notifier_client, settings.notify_channel, hand_off=True)
    approvals = core.approvals
    cards = ProgressTracker(
        core.tracking, notifier, request_channel=lambda rid: approvals.get(rid).channel_id, request_view=approvals.get
    )
    slack = SlackSide(
        client=client,
        notifier=notifier,
        cards=cards,
        home=AppHome(core.home, step_up_kinds=core.step_up.kinds),
        announcer=SlackAnnouncer(
            client=client,
            notifier=notifier,
            cards=cards,
            approvals=approvals,
            on_decided=metrics.approval_decided,
            step_up_kinds=core.step_up.kinds,
        ),
    )
    witness = Witness.from_settings(core.db, settings, notifier, on_failure=metrics.witness_failed)
    app = create_app(settings, core, slack, on_ack=metrics.acked)
    # Slack unreachable at start must not stop the process: auth.test is retried in the background and the
    # process reports not ready until it passes (bot/readiness.py); with verify_token=False it is not checked.
    slack_check = SlackAuthCheck(client.auth_test)
    if verify_token:
        slack_check.start()
    readiness = Readiness(
        core.db,
        slack_check if verify_token else None,
        on_verdict=metrics.readiness,
        takes_work=lambda: core.work.healthy() and core.listeners.healthy(),
    )
    return Bot(
        settings=settings,
        core=core,
        slack=slack,
        app=app,
        wsgi=create_wsgi_app(app, readiness.check),
        witness=witness,
        metrics=metrics,
        readiness=readiness,
        slack_check=slack_check,
    )


def ticker_for(bot: Bot, interval: float | None = None) -> Ticker:
    """A ticker over the bot's Core, announcing on its Slack side (every POLL_SECONDS, at most 30 s)."""
    every = min(bot.settings.poll_seconds, 30.0) if interval is None else interval
    return Ticker(bot.core, bot.slack.announcer, every, bot.metrics)


def start_background(bot: Bot) -> Ticker:
    ticker = bot.ticker = ticker_for(bot)
    # A request left `executing` by a crash before this start is flagged on the first tick.
    ticker.start()
    if bot.witness is not None:  # its own thread: signing and delivering checkpoints never waits on the ticker
        bot.witness.start()
    return ticker
