"""What a `schedule` approval request proposes: a new schedule, or new settings for one (`/snapshot reschedule`).

Rules it keeps: the plan is stored with the request as canonical JSON and is exactly what the card shows; its
digest (with the schedule and server ids) is what an approval is bound to. `revision` is the schedule's revision
the plan was made against: a schedule changed or removed since is never overwritten by an older approval.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SchedulePlan:
    when: str
    timezone: str
    keep: int
    on_full: str
    next_run: datetime | None  # UTC, as the card shows it (in `timezone`)
    change: bool  # False: a new schedule (stored off until approved); True: new settings for an enabled one
    revision: int  # the schedule's revision when asked
    before_when: str = ""  # a change: the settings it replaces
    before_keep: int = 0
    before_on_full: str = ""

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["next_run"] = self.next_run.isoformat() if self.next_run is not None else None
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> SchedulePlan | None:
        """The stored plan, or None when there is none or it cannot be read (the request then fails, unapplied)."""
        try:
            data = json.loads(raw or "")
            next_run = datetime.fromisoformat(data["next_run"]) if data.get("next_run") else None
            return cls(
                when=str(data["when"]),
                timezone=str(data["timezone"]),
                keep=int(data["keep"]),
                on_full=str(data["on_full"]),
                next_run=next_run,
                change=bool(data["change"]),
                revision=int(data["revision"]),
                before_when=str(data.get("before_when", "")),
                before_keep=int(data.get("before_keep", 0)),
                before_on_full=str(data.get("before_on_full", "")),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def digest(self, schedule_id: int, server_id: int) -> str:
        """SHA-256 of exactly what the card shows and an approver approves."""
        bound = {
            "kind": "schedule",
            "schedule_id": int(schedule_id),
            "server_id": int(server_id),
            "plan": self.to_json(),
        }
        return hashlib.sha256(json.dumps(bound, sort_keys=True).encode("utf-8")).hexdigest()

    def settings(self) -> dict[str, Any]:
        return {"when": self.when, "timezone": self.timezone, "keep": self.keep, "on_full": self.on_full}

    def before(self) -> dict[str, Any] | None:
        if not self.change:
            return None
        return {"when": self.before_when, "keep": self.before_keep, "on_full": self.before_on_full}
