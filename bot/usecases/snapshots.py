"""Listing, creating and deleting snapshots: audit intent, call VPS.org, audit outcome.

Absence is concluded only from a complete listing: when VPS.org's `count` says it has more snapshots than it sent
(after following every page), a snapshot that is not among them "could not be confirmed", never "does not exist".
A pinned snapshot (storage/pins.py) is never deleted: the delete path refuses it before any intent row or call,
whoever asks (a person, an approved request, a schedule's retention).
`/snapshot list` reads through the workspace's listing cache (bot/usecases/listing_cache.py): its "Show more" pages
come from the listing its first page came from; the checks before a create or delete never read the cache.
A manual create that takes a server's last free slot says so when restores keep an undo slot
(`warn_last_slot`, SNAPSHOT_RESERVE_UNDO_SLOT): the next restore must then free one for its safety snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from bot.usecases.access import Permission
from bot.usecases.audited_call import CallResult, audited_call
from bot.usecases.context import Actor, new_operation_id, utcnow
from bot.usecases.errors import (
    AlreadyGone,
    CouldNotConfirm,
    InvalidInput,
    NotFoundError,
    QuotaReached,
    doing_with,
    explain_vps_error,
)
from bot.usecases.guard import Guard
from bot.usecases.listing_cache import ListingCache
from bot.usecases.pin_rules import PinnedSnapshot
from bot.usecases.read_limit import ReadLimited
from bot.usecases.server_groups import ServerGroup, group_by_server, server_and_snapshots
from bot.usecases.validation import validate_description, validate_name
from bot.usecases.wording import Text, code, command
from bot.vps.client import SnapshotList, VpsClient
from bot.vps.errors import DeadlineExceeded, NotFound, VpsError
from bot.vps.models import SNAPSHOTS_PER_SERVER, CreatedSnapshot, Server, ServerRef, Snapshot
from storage.audit import Action, AuditLog, Outcome
from storage.pins import PinRow, Pins


@dataclass(frozen=True)
class Overview:
    groups: list[ServerGroup]
    fetched_at: datetime  # when VPS.org was asked for the snapshots shown
    server_id: int | None = None  # the filter, if any
    api_total: int | None = None  # what VPS.org said the total was, when it says more than it returned
    session: str | None = None  # names the listing shown, so "Show more" pages the same one
    age_seconds: float = 0.0  # how old the listing is (served from the cache)
    fresh: bool = True  # False: an older listing shown because the reader is past SNAPSHOT_READ_LIMIT
    pins: dict[int, PinRow] = field(default_factory=dict)  # the pins on the snapshots listed, by snapshot id

    @property
    def complete(self) -> bool:
        """Every snapshot VPS.org counts was listed: only then may a server be said to hold "N of 5" or none."""
        return self.api_total is None

    @property
    def snapshot_count(self) -> int:
        return sum(len(g.snapshots) for g in self.groups)


@dataclass(frozen=True)
class CreateResult:
    snapshot: Snapshot
    server: ServerRef
    api_message: str
    operation_id: str
    server_status: str = ""  # as `GET /servers/` listed it just before the create ("active": it was running)
    took_last_slot: bool = False  # a manual create filled the server while restores want a slot for their undo


@dataclass(frozen=True)
class DeleteResult:
    snapshot: Snapshot
    operation_id: str


@dataclass
class SnapshotService:
    vps: VpsClient
    audit: AuditLog
    guard: Guard
    clock: Callable[[], datetime] = utcnow
    limit_per_server: int = SNAPSHOTS_PER_SERVER
    listings: ListingCache = field(default_factory=ListingCache)
    warn_last_slot: bool = False  # SNAPSHOT_RESERVE_UNDO_SLOT with safety snapshots on
    pins: Pins | None = None  # None: nothing can be pinned (bare test set-ups)

    def record_invalid_command(self, actor: Actor, error: str, operation: str = "command") -> None:
        """A command that could not be understood is a validation refusal: audited, nothing else happens."""
        self.audit.append(
            actor.entry(
                Action.REFUSED_VALIDATION,
                Outcome.REFUSED,
                details={"operation": operation, "error": error[:500]},
            )
        )

    # ---- pins ----------------------------------------------------------------------------------------------
    def pinned(self) -> dict[int, PinRow]:
        """Every pin, by snapshot id (for the list and App Home)."""
        return self.pins.all() if self.pins is not None else {}

    def pinned_ids(self) -> frozenset[int]:
        """What retention and "Free oldest" must never pick."""
        return self.pins.pinned_ids() if self.pins is not None else frozenset()

    def refuse_if_pinned(self, snapshot_id: int) -> None:
        """Raise `PinnedSnapshot` (who pinned it, why, how to unpin) when `snapshot_id` is pinned."""
        held = self.pins.get(snapshot_id) if self.pins is not None else None
        if held is not None:
            raise PinnedSnapshot(held)

    # ---- reading -------------------------------------------------------------------------------------------
    def overview(self, actor: Actor, server_id: int | None = None, *, session: str | None = None) -> Overview:
        """Snapshots of one server (one filtered listing), or of all servers grouped by server (servers without
        snapshots included), read through the workspace's listing cache.

        With the `session` of an earlier overview (a "Show more" click) the listing it showed is paged while the
        cache keeps it, and no new audit row is written; otherwise the cached listing, or VPS.org's when nothing
        fresh is held. Past the reader's SNAPSHOT_READ_LIMIT the last listing is shown with its age (`fresh`)."""
        self.guard.require(actor, Permission.LIST, server_id=server_id)
        team = actor.team_id or ""
        reader = (team, actor.user_id)
        started = time.monotonic()
        try:
            snapshots = self.listings.read(
                (team, "snapshots", server_id),
                lambda: self.vps.list_snapshots(server_id),
                reader=reader,
                session=session,
            )
            paging = session is not None and snapshots.session == session
            # A page of a listing already shown names its servers from the server listing held then, if still held.
            held = self.listings.peek((team, "servers", None)) if paging else None
            servers = held or self.listings.read((team, "servers", None), self.vps.list_servers, reader=reader)
        except ReadLimited as refused:
            self.audit.append(
                actor.entry(Action.LIST, Outcome.REFUSED, server_id=server_id, details={"error": "read limit"})
            )
            raise refused
        except VpsError as error:
            self.audit.append(
                actor.entry(
                    Action.LIST,
                    Outcome.FAILED,
                    server_id=server_id,
                    details={"status_code": error.status_code, "error": str(error)},
                )
            )
            raise explain_vps_error(error, "listing snapshots") from error
        listed: SnapshotList = snapshots.value
        by_id: dict[int, Server] = {s.id: s for s in servers.value}
        if server_id is not None and server_id not in by_id and not listed:
            raise NotFoundError(Text("Server {} does not exist (or the bot's token can't see it).").format(server_id))
        groups = group_by_server(servers.value, listed, only=server_id)
        if not paging:  # a new listing shown (paging one already shown is not a new read)
            self.audit.append(
                actor.entry(
                    Action.LIST,
                    Outcome.OK,
                    server_id=server_id,
                    details={
                        "snapshots": sum(len(g.snapshots) for g in groups),
                        "servers": len(groups),
                        "duration_ms": round((time.monotonic() - started) * 1000),
                        "cached": not snapshots.fetched_now,
                    },
                )
            )
        listed_ids = {s.id for g in groups for s in g.snapshots}
        return Overview(
            pins={i: p for i, p in self.pinned().items() if i in listed_ids},
            groups=groups,
            fetched_at=snapshots.fetched_at,
            server_id=server_id,
            api_total=listed.total if not listed.complete else None,
            session=snapshots.session,
            age_seconds=snapshots.age,
            fresh=snapshots.fresh or snapshots.session == session,
        )

    def find_snapshot(self, snapshot_id: int, *, deadline: float | None = None) -> Snapshot:
        """There is no GET for one snapshot: list them all (every page) and pick it out.

        `deadline` (on the VPS client's clock) bounds the whole listing; past it `DeadlineExceeded` propagates.
        """
        return self.find_in_listing(snapshot_id, deadline=deadline)[0]

    def find_in_listing(self, snapshot_id: int, *, deadline: float | None = None) -> tuple[Snapshot, SnapshotList]:
        """`find_snapshot`, with the whole account listing it was found in, for a caller that needs more of it
        (a restore request counts its server's snapshots from it rather than listing them again)."""
        try:
            snapshots = self.vps.list_snapshots(deadline=deadline)
        except DeadlineExceeded:
            raise
        except VpsError as error:
            raise explain_vps_error(error, "looking up the snapshot") from error
        for snapshot in snapshots:
            if snapshot.id == snapshot_id:
                return snapshot, snapshots
        if not snapshots.complete:
            raise CouldNotConfirm(
                f"VPS.org's snapshot list was incomplete ({len(snapshots)} of {snapshots.total} sent), so snapshot "
                f"{snapshot_id} could not be confirmed. Nothing was done; try again in a minute."
            )
        raise NotFoundError(Text("Snapshot {} does not exist. {} shows the ids.").format(snapshot_id, command("list")))

    def server_names(self) -> dict[int, str]:
        try:
            return {s.id: s.name for s in self.vps.list_servers()}
        except VpsError:
            return {}

    # ---- create --------------------------------------------------------------------------------------------
    def validate_create(self, name: str | None, description: str | None) -> tuple[str, str]:
        """Purely local checks (no API call): usable inside Slack's 3-second window, e.g. on modal submit."""
        return validate_name(name), validate_description(description)

    def record_invalid_create(self, actor: Actor, error: InvalidInput) -> None:
        """A create refused by `validate_create` (typed or from the form) is a validation refusal: audited."""
        self.audit.append(
            actor.entry(
                Action.REFUSED_VALIDATION,
                Outcome.REFUSED,
                details={"operation": "create", "field": error.field, "error": str(error)},
            )
        )

    def create(self, actor: Actor, server_id: int, name: str | None, description: str | None = "") -> CreateResult:
        """A snapshot of `server_id` (parsed where it came in: bot/slack/listeners/ids.py)."""
        try:
            clean_name, clean_description = self.validate_create(name, description)
        except InvalidInput as error:
            self.record_invalid_create(actor, error)
            raise
        self.guard.require(actor, Permission.CREATE, mutating=True, server_id=server_id)
        return self.create_checked(actor, server_id, clean_name, clean_description)

    def create_checked(
        self,
        actor: Actor,
        sid: int,
        clean_name: str,
        clean_description: str,
        *,
        scheduled: dict[str, Any] | None = None,
    ) -> CreateResult:
        """After validation and the permission check: quota, intent row, the call once, outcome row. A schedule's
        run comes here with `scheduled` (its audit details), not counted towards the rate limit."""
        extra = scheduled or {}
        listed, existing = server_and_snapshots(self.vps, sid)
        server = ServerRef(listed.id, listed.name)
        if len(existing) >= self.limit_per_server:
            self.audit.append(
                actor.entry(
                    Action.REFUSED_VALIDATION,
                    Outcome.REFUSED,
                    server_id=sid,
                    details={
                        "operation": "create",
                        "error": "snapshot limit reached",
                        "count": len(existing),
                        **extra,
                    },
                )
            )
            raise quota_refusal(server, existing, self.limit_per_server)
        operation_id = new_operation_id()
        intent = actor.entry(
            Action.CREATE_REQUESTED,
            Outcome.INTENT,
            server_id=sid,
            operation_id=operation_id,
            details={"name": clean_name, "description": clean_description, **extra},
        )

        def outcome(result: CallResult[CreatedSnapshot]) -> CreateResult:
            if result.error is not None:
                self.audit.append(
                    actor.entry(
                        Action.CREATE_FAILED,
                        result.failure_outcome,
                        server_id=sid,
                        operation_id=operation_id,
                        details=result.error_details(name=clean_name, **extra),
                    )
                )
                raise explain_vps_error(result.error, doing_with("creating snapshot", clean_name)) from result.error
            created = result.answer
            assert created is not None
            self.audit.append(
                actor.entry(
                    Action.CREATE_SUCCEEDED,
                    Outcome.OK,
                    server_id=sid,
                    snapshot_id=created.snapshot.id,
                    operation_id=operation_id,
                    details={
                        "name": clean_name,
                        "status_code": 201,
                        "api_message": created.message,
                        "duration_ms": result.duration_ms,
                        **extra,
                    },
                )
            )
            ref = created.snapshot.server if created.snapshot.server.name else server
            return CreateResult(
                snapshot=created.snapshot,
                server=ref,
                api_message=created.message,
                operation_id=operation_id,
                server_status=listed.status,
                took_last_slot=self.warn_last_slot and not scheduled and len(existing) + 1 >= self.limit_per_server,
            )

        # Intent first, committed: if this write fails, VPS.org is never called. Counted under the rate limit's lock.
        return audited_call(
            lambda: self.vps.create_snapshot(sid, clean_name, clean_description),
            write_intent=lambda: self.audit.append(intent) if scheduled else self.guard.record_mutation(actor, intent),
            write_outcome=outcome,
        )

    # ---- delete --------------------------------------------------------------------------------------------
    def prepare_delete(self, actor: Actor, snapshot_id: int) -> Snapshot:
        """What a delete would remove, for the confirmation message. Checks permission; changes nothing."""
        self.guard.require(actor, Permission.DELETE, snapshot_id=snapshot_id)
        self.refuse_if_pinned(snapshot_id)
        return self.find_snapshot(snapshot_id)

    def delete(self, actor: Actor, snapshot_id: int) -> DeleteResult:
        self.guard.require(actor, Permission.DELETE, mutating=True, snapshot_id=snapshot_id)
        snapshot = self.find_snapshot(snapshot_id)
        return self.execute_delete(actor, snapshot)

    def execute_delete(
        self,
        actor: Actor,
        snapshot: Snapshot,
        *,
        request_id: int | None = None,
        operation_id: str | None = None,
        scheduled: dict[str, Any] | None = None,
    ) -> DeleteResult:
        """The delete itself, after every check (and, when configured, after approval, under its claim's token);
        a schedule's retention passes `scheduled` (its audit details), not counted towards the rate limit."""
        self.refuse_if_pinned(snapshot.id)  # before the intent row: nothing is recorded as started, nothing sent
        operation_id = operation_id or new_operation_id()
        extra = scheduled or {}
        # Intent, failure and success rows name the same targets and operation.
        entry = partial(
            actor.entry,
            server_id=snapshot.server.id,
            snapshot_id=snapshot.id,
            request_id=request_id,
            operation_id=operation_id,
        )
        intent = entry(Action.DELETE_REQUESTED, Outcome.INTENT, details={"name": snapshot.name, **extra})

        def write_intent() -> None:
            # A direct delete counts towards the rate limit; an approved one already did, a schedule's never does.
            if request_id is None and not scheduled:
                self.guard.record_mutation(actor, intent)
            else:
                self.audit.append(intent)

        def outcome(result: CallResult[None]) -> DeleteResult:
            if result.error is not None:
                self.audit.append(
                    entry(
                        Action.DELETE_FAILED,
                        result.failure_outcome,
                        details=result.error_details(name=snapshot.name, **extra),
                    )
                )
                if isinstance(result.error, NotFound):
                    raise AlreadyGone(
                        f"Snapshot {snapshot.id} no longer exists — someone may have deleted it.",
                        snapshot_id=snapshot.id,
                    ) from result.error
                raise explain_vps_error(result.error, doing_with("deleting snapshot", snapshot.name)) from result.error
            done = {"name": snapshot.name, "status_code": 204, "duration_ms": result.duration_ms, **extra}
            self.audit.append(entry(Action.DELETE_SUCCEEDED, Outcome.OK, details=done))
            return DeleteResult(snapshot=snapshot, operation_id=operation_id)

        return audited_call(
            lambda: self.vps.delete_snapshot(snapshot.id), write_intent=write_intent, write_outcome=outcome
        )


def quota_refusal(server: ServerRef, existing: list[Snapshot], limit: int) -> QuotaReached:
    """The refusal for a full server, naming (and offering for deletion) its oldest snapshot."""
    oldest = min(existing, key=lambda s: (s.created_at is None, s.created_at.timestamp() if s.created_at else 0, s.id))
    return QuotaReached(
        quota_message(server, len(existing), limit, oldest), server_id=server.id, oldest_snapshot_id=oldest.id
    )


def quota_message(server: ServerRef, count: int, limit: int, oldest: Snapshot) -> Text:
    """Why a create was refused: both names come from VPS.org, so both are names (code spans in Slack)."""
    return Text(
        "{} already has {} of {} snapshots, the most VPS.org allows. Delete one first — the oldest is {} (#{})."
    ).format(code(server.name or f"server {server.id}", 80), count, limit, code(oldest.name, 64), oldest.id)
