"""Whether a schedule's `keep` fits on its server next to everything else (VPS.org allows 5 snapshots per server).

Rules it keeps: the server's snapshots that are no enabled schedule's own, plus what the server's other enabled
schedules reserve, plus this one's need must fit in the quota; with on_full=skip the need is `keep + 1`, because a
new snapshot is taken before the oldest is deleted. `reserved` slots (the undo slot, SNAPSHOT_RESERVE_UNDO_SLOT)
are never a schedule's: a restore's safety snapshot must always fit. A schedule being changed (`changing`) is not
counted twice: its own snapshots are its own (not "no schedule's"), and only its new `keep` is reserved, not its
old one too.
"""

from __future__ import annotations

from enum import StrEnum

from bot.usecases.errors import InvalidInput
from bot.usecases.retention import Ownership
from bot.usecases.wording import Text, code, sentence
from bot.vps.models import Snapshot
from storage.schedules import Schedules


class OnFull(StrEnum):
    """What a schedule does when its server is full at its time (`on_full=`); stored as its value."""

    SKIP = "skip"  # the default: no snapshot this time, and it says so
    ROTATE = "rotate"  # the schedule's own oldest deletable snapshot is deleted first


def check_fits(
    store: Schedules,
    snapshots: list[Snapshot],
    *,
    server_id: int,
    keep: int,
    on_full: str,
    limit: int,
    changing: int | None = None,
    reserved: int = 0,
) -> None:
    """Raise `InvalidInput` (field "keep") saying why, when `keep` cannot fit."""
    problem = fit_problem(
        store,
        snapshots,
        server_id=server_id,
        keep=keep,
        on_full=on_full,
        limit=limit,
        changing=changing,
        reserved=reserved,
    )
    if problem is not None:
        raise InvalidInput(problem, field="keep")


def fit_problem(
    store: Schedules,
    snapshots: list[Snapshot],
    *,
    server_id: int,
    keep: int,
    on_full: str,
    limit: int,
    changing: int | None = None,
    reserved: int = 0,
) -> Text | None:
    """Why `keep` cannot fit on the server, or None when it fits."""
    enabled = store.enabled(server_id=server_id)
    others = [s for s in enabled if s.id != changing]
    owners = enabled if changing is not None else others
    owned_by_schedules = {
        s.id
        for owner in owners
        for s in snapshots
        if Ownership(owner.id, store.own_snapshot_ids(owner.id), frozenset()).owns(s)
    }
    unscheduled = len([s for s in snapshots if s.id not in owned_by_schedules])
    taken = unscheduled + sum(o.keep + (1 if o.on_full == OnFull.SKIP else 0) for o in others)
    needed = keep + (1 if on_full == OnFull.SKIP else 0)
    if taken + reserved + needed <= limit:
        return None
    room = limit - taken - reserved
    why = Text("The server has {} no schedule owns").format(sentence(count_words(unscheduled, "snapshot")))
    if others:
        why += Text(" and its other schedules reserve {} more").format(taken - unscheduled)
    if reserved:
        # Said, so nobody wonders why 5 - 4 leaves nothing: SNAPSHOT_RESERVE_UNDO_SLOT keeps one for the undo.
        why += Text(", {} kept free for a restore's safety snapshot (SNAPSHOT_RESERVE_UNDO_SLOT)").format(
            sentence("1 slot is" if reserved == 1 else f"{reserved} slots are")
        )
    left = max(room, 0)
    why += Text(", of the {} VPS.org allows, so {} left. ").format(
        limit, sentence(f"{left} slot is" if left == 1 else f"{left} slots are")
    )
    keep_words = code(f"keep {keep}")
    # Only what would fit is suggested: "a smaller keep" to someone at keep 1 sends them in a circle.
    largest_keep = room - (1 if on_full == OnFull.SKIP else 0)  # the keep that fits with this on_full, if >= 1
    options: list[Text] = []
    if 1 <= largest_keep < keep:
        options.append(Text("{} or less").format(code(f"keep {largest_keep}")))
    if on_full == OnFull.SKIP and room >= 1:
        options.append(code("on_full=rotate"))
    if on_full == OnFull.SKIP:
        need_words = Text(
            "{} with on_full=skip needs {} (the kept ones plus the new one, taken before the oldest is deleted)"
        ).format(keep_words, needed)
    else:
        need_words = Text("{} needs {}").format(keep_words, needed)
    if options:
        choices = options[0] if len(options) == 1 else Text("{}, or {}").format(options[0], options[1])
        hint = Text(" Use {}, or delete some snapshots first.").format(choices)
    else:
        hint = Text(" Delete some snapshots of the server first.")
    return why + need_words + Text(".") + hint


def misfit_summary(
    store: Schedules,
    snapshots: list[Snapshot],
    schedule_id: int,
    *,
    server_id: int,
    keep: int,
    on_full: str,
    limit: int,
    reserved: int,
) -> str:
    """For a schedule already running (made before the rules or the server changed): a short "does not fit any more"
    note, or "" when it fits. It keeps running; the note is shown with its results."""
    problem = fit_problem(
        store,
        snapshots,
        server_id=server_id,
        keep=keep,
        on_full=on_full,
        limit=limit,
        changing=schedule_id,
        reserved=reserved,
    )
    if problem is None:
        return ""
    undo = f", {reserved} kept free for a restore's undo" if reserved else ""
    return (
        f"does not fit any more (keep {keep}, on_full={on_full}, beside the server's other snapshots{undo}, "
        f"of the {limit} VPS.org allows); it keeps running: change it with reschedule"
    )


def count_words(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
