"""Who may do what: roles from configured Slack user and user-group ids, and the channel allow-list.

Identity is the Slack user id only. Display names can be changed by their owner, so they are never matched.
Group membership comes from a resolver the Slack layer provides; if it fails, the check fails closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Protocol

from bot.config import Settings
from bot.redaction import redact
from bot.slack_ids import GROUP_ID, USER_ID
from bot.usecases.wording import Text, channel_link, emphasis, sentence

log = logging.getLogger(__name__)

_MAX_DETAIL = 160


class Role(IntEnum):
    """Cumulative: each role can do everything the lower ones can."""

    VIEWER = 1
    OPERATOR = 2
    APPROVER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def setting(self) -> str:
        """The environment variable that lists who has this role."""
        return f"SNAPSHOT_{self.name}S"


class Permission(StrEnum):
    LIST = "list"
    AUDIT_READ = "audit.read"
    AUDIT_READ_ALL = "audit.read_all"
    CREATE = "create"
    DELETE = "delete"
    REQUEST_RESTORE = "restore.request"
    APPROVE = "approve"  # rejecting a request needs the same permission
    SCHEDULE = "schedule"  # add a schedule, change or remove one's own (its runs then need no one's permission)
    SCHEDULE_OTHERS = "schedule.others"  # change or remove a schedule someone else made
    PIN = "pin"  # pin or unpin a snapshot (protects it from retention and deletes)
    MFA_ADMIN = "mfa.admin"  # approve or reset someone's authenticator enrolment (the TOTP step-up)


REQUIRED_ROLE: dict[Permission, Role] = {
    Permission.LIST: Role.VIEWER,
    Permission.AUDIT_READ: Role.VIEWER,
    Permission.CREATE: Role.OPERATOR,
    Permission.DELETE: Role.OPERATOR,
    Permission.REQUEST_RESTORE: Role.OPERATOR,
    Permission.SCHEDULE: Role.OPERATOR,
    Permission.PIN: Role.OPERATOR,
    Permission.APPROVE: Role.APPROVER,
    Permission.AUDIT_READ_ALL: Role.ADMIN,
    Permission.MFA_ADMIN: Role.ADMIN,
    Permission.SCHEDULE_OTHERS: Role.ADMIN,
}

# How a refusal names the action, completing "You need the *x* role to ...".
_ACTION_WORDS: dict[Permission, str] = {
    Permission.LIST: "list snapshots",
    Permission.AUDIT_READ: "read the audit log",
    Permission.AUDIT_READ_ALL: "read everyone's audit history",
    Permission.CREATE: "create snapshots",
    Permission.DELETE: "delete snapshots",
    Permission.REQUEST_RESTORE: "request a restore",
    Permission.SCHEDULE: "add or remove snapshot schedules",
    Permission.PIN: "pin or unpin snapshots",
    Permission.APPROVE: "approve or reject requests",
    Permission.MFA_ADMIN: "approve or reset authenticator enrolments",
    Permission.SCHEDULE_OTHERS: "change or remove schedules other people made",
}


@dataclass(frozen=True)
class Decision:
    """`reason` is plain words for the user; `error` is True when "no" is only due to a failed lookup."""

    allowed: bool
    reason: Text
    required_role: Role | None = None
    error: bool = False


class GroupResolver(Protocol):
    """Returns the user ids in a Slack user group; raises on any failure."""

    def __call__(self, group_id: str, /) -> Iterable[str]: ...


class GroupResolutionError(Exception):
    """A user group's members could not be fetched. The message holds no secrets and is safe to show."""

    def __init__(self, group_id: str, detail: str) -> None:
        super().__init__(f"couldn't resolve user group {group_id}: {detail}")
        self.group_id = group_id
        self.detail = detail


@dataclass(frozen=True)
class _Members:
    users: frozenset[str]
    groups: tuple[str, ...]


class AccessPolicy:
    def __init__(
        self,
        *,
        viewers: Sequence[str] = (),
        operators: Sequence[str] = (),
        approvers: Sequence[str] = (),
        admins: Sequence[str] = (),
        allowed_channels: Sequence[str] = (),
        resolve_group: GroupResolver | None = None,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._roles: dict[Role, _Members] = {
            role: _split(role, entries)
            for role, entries in (
                (Role.VIEWER, viewers),
                (Role.OPERATOR, operators),
                (Role.APPROVER, approvers),
                (Role.ADMIN, admins),
            )
        }
        self._allowed_channels = tuple(allowed_channels)
        self._resolve_group = resolve_group
        self._cache_seconds = cache_seconds
        self._clock = clock
        # group id -> (members, expires at). Only successful lookups are stored, so a failure is retried.
        self._cache: dict[str, tuple[frozenset[str], float]] = {}
        # Guards the cache dict only; the (slow, network) resolver call runs outside it.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, resolve_group: GroupResolver | None) -> AccessPolicy:
        return cls(
            viewers=settings.viewers,
            operators=settings.operators,
            approvers=settings.approvers,
            admins=settings.admins,
            allowed_channels=settings.allowed_channels,
            resolve_group=resolve_group,
        )

    @property
    def open_mode(self) -> bool:
        """No role list configured at all: everyone may do everything."""
        return not any(m.users or m.groups for m in self._roles.values())

    def holders(self, role: Role) -> tuple[frozenset[str], tuple[str, ...]]:
        """The user ids and group ids configured with `role` or higher (none in open mode: nobody is named)."""
        roles = [r for r in Role if r >= role]
        users = frozenset(u for r in roles for u in self._roles[r].users)
        groups = tuple(dict.fromkeys(g for r in roles for g in self._roles[r].groups))
        return users, groups

    def members(self, group_id: str) -> frozenset[str]:
        """A user group's members (cached like the access checks'); raises GroupResolutionError on failure."""
        return self._members(group_id)

    def role_of(self, user_id: str) -> Role | None:
        """The user's highest role, or None. In open mode everyone is an admin.

        Raises GroupResolutionError when a group that could give the user a higher role than the ones
        already known could not be resolved: the honest answer is then "unknown".
        """
        if self.open_mode:
            return Role.ADMIN
        explicit = max((r for r, m in self._roles.items() if user_id in m.users), default=None)
        for role in sorted(Role, reverse=True):
            if explicit is not None and role <= explicit:
                return explicit
            if self._in_groups(user_id, self._roles[role].groups):
                return role
        return None

    def check(self, user_id: str, permission: Permission) -> Decision:
        """May `user_id` do `permission`? Never raises: a failure to find out is a refusal with error=True."""
        required = REQUIRED_ROLE.get(permission)
        if required is None:  # a caller's typo must not become "allowed", even in open mode
            return Decision(
                False, Text("Unknown action {}, so access is refused.").format(sentence(repr(permission))), error=True
            )
        if self.open_mode:
            return Decision(True, Text("Access control is off: everyone may do this."), required)
        sufficient = [role for role in Role if role >= required]
        # Explicit entries first: a listed user must not be refused because some group lookup failed.
        has_role = Text("You have the {} role or higher.").format(emphasis(required.label))
        if any(user_id in self._roles[role].users for role in sufficient):
            return Decision(True, has_role, required)
        try:
            groups = [g for role in sufficient for g in self._roles[role].groups]
            if self._in_groups(user_id, groups):
                return Decision(True, has_role, required)
        except GroupResolutionError as exc:
            log.warning("access check for %s (%s) refused: %s", user_id, permission.value, exc)
            return Decision(
                False,
                Text(
                    "Couldn't check your group membership with Slack ({}), so access is refused. "
                    "Please try again in a moment."
                ).format(sentence(exc.detail)),
                required,
                error=True,
            )
        except Exception as exc:  # a bug must not turn into "allowed", nor escape as a crash
            log.exception("access check for %s (%s) failed", user_id, permission.value)
            return Decision(
                False,
                Text("Couldn't check your access ({}), so access is refused.").format(sentence(_describe_failure(exc))),
                required,
                error=True,
            )
        return Decision(
            False,
            Text("You need the {} role to {}. Ask an admin to add you to {}.").format(
                emphasis(required.label), sentence(_ACTION_WORDS[permission]), sentence(required.setting)
            ),
            required,
        )

    def check_channel(self, channel_id: str | None) -> Decision:
        """Commands are accepted only in the allow-listed channels, when a list is configured."""
        if not self._allowed_channels:
            return Decision(True, Text("The bot can be used in any channel."))
        if channel_id is not None and channel_id in self._allowed_channels:
            return Decision(True, Text("This channel is on the allow-list."))
        # An unknown channel (None) is refused too: the allow-list is a restriction, so it fails closed.
        channels = _channel_list(self._allowed_channels)
        return Decision(False, Text("Snapshot commands can only be used in {}.").format(channels))

    def describe(self) -> Text:
        """One line for `/snapshot help`."""
        if self.open_mode:
            line = "Access control is OFF: everyone in the workspace can create, delete and request restores."
        else:
            parts = [
                f"{role.label}s: {_count(self._roles[role])}"
                for role in sorted(Role, reverse=True)
                if self._roles[role].users or self._roles[role].groups
            ]
            line = "Access control is ON (each role includes the ones below it) — " + "; ".join(parts) + "."
        described = sentence(line)
        if self._allowed_channels:
            described += Text(" Commands work only in {}.").format(_channel_list(self._allowed_channels))
        return described

    def _in_groups(self, user_id: str, groups: Iterable[str]) -> bool:
        """True if the user is in any of `groups`.

        A failing group only matters when no other group answers yes, so every group is tried before the
        first failure is raised.
        """
        failure: GroupResolutionError | None = None
        for group_id in groups:
            try:
                if user_id in self._members(group_id):
                    return True
            except GroupResolutionError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return False

    def _members(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(group_id)
        if cached is not None and now < cached[1]:
            return cached[0]
        if self._resolve_group is None:
            raise GroupResolutionError(group_id, "user groups can't be looked up without a Slack connection")
        try:
            members = frozenset(self._resolve_group(group_id))
        except Exception as exc:
            raise GroupResolutionError(group_id, _describe_failure(exc)) from exc
        with self._lock:
            self._cache[group_id] = (members, self._clock() + self._cache_seconds)
        return members


def _split(role: Role, entries: Sequence[str]) -> _Members:
    users: set[str] = set()
    groups: list[str] = []
    for entry in entries:
        if USER_ID.match(entry):
            users.add(entry)
        elif GROUP_ID.match(entry):
            if entry not in groups:
                groups.append(entry)
        else:
            # Names would be spoofable (anyone can rename themselves), so only ids are accepted.
            raise ValueError(f"{role.setting}: {entry!r} is not a Slack user (U…/W…) or user group (S…) id")
    return _Members(frozenset(users), tuple(groups))


def _describe_failure(exc: BaseException) -> str:
    text = redact(str(exc)).strip() or type(exc).__name__
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1] + "…"
    return text


def _count(members: _Members) -> str:
    bits = []
    if members.users:
        n = len(members.users)
        bits.append(f"{n} user" + ("s" if n != 1 else ""))
    if members.groups:
        n = len(members.groups)
        bits.append(f"{n} group" + ("s" if n != 1 else ""))
    return " and ".join(bits)


def _channel_list(channels: Sequence[str]) -> Text:
    return Text(", ").join(channel_link(c) for c in channels)
