"""Access policy: roles × permissions, user groups (cached, failing closed), channel allow-list, open mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.config import load_settings
from bot.slack.wording import render
from bot.usecases.access import (
    REQUIRED_ROLE,
    AccessPolicy,
    Decision,
    GroupResolutionError,
    Permission,
    Role,
)

# The table as the product specifies it, written out independently of the code under test.
EXPECTED_REQUIRED_ROLE = {
    Permission.LIST: Role.VIEWER,
    Permission.AUDIT_READ: Role.VIEWER,
    Permission.CREATE: Role.OPERATOR,
    Permission.DELETE: Role.OPERATOR,
    Permission.REQUEST_RESTORE: Role.OPERATOR,
    Permission.SCHEDULE: Role.OPERATOR,  # issue 18: adding and removing schedules
    Permission.PIN: Role.OPERATOR,  # issue 29 §3: pinning and unpinning snapshots
    Permission.APPROVE: Role.APPROVER,
    Permission.AUDIT_READ_ALL: Role.ADMIN,
    Permission.MFA_ADMIN: Role.ADMIN,  # issue 28 §2: approving and resetting authenticator enrolments
    Permission.SCHEDULE_OTHERS: Role.ADMIN,  # issue 29 §7: someone else's schedule, changed or removed
}
ROLE_SETTING = {
    Role.VIEWER: "SNAPSHOT_VIEWERS",
    Role.OPERATOR: "SNAPSHOT_OPERATORS",
    Role.APPROVER: "SNAPSHOT_APPROVERS",
    Role.ADMIN: "SNAPSHOT_ADMINS",
}
SLACK_TOKEN = "xoxb-1111-2222-SeCrEtSeCrEt"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeResolver:
    """Stands in for `usergroups.users.list`: records every call, can be made to fail."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self.groups = groups
        self.calls: list[str] = []
        self.failing: dict[str, Exception] = {}

    def __call__(self, group_id: str) -> Iterator[str]:
        self.calls.append(group_id)
        if group_id in self.failing:
            raise self.failing[group_id]
        # A generator, like a paginated API: the policy must not keep it and read it twice.
        return (user for user in self.groups[group_id])


def test_required_roles_are_the_specified_table() -> None:
    assert REQUIRED_ROLE == EXPECTED_REQUIRED_ROLE
    assert set(REQUIRED_ROLE) == set(Permission)


@pytest.mark.parametrize("permission", list(Permission), ids=str)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name.lower())
def test_each_role_against_each_permission(role: Role, permission: Permission) -> None:
    # Every role list has someone in it, so the policy is not in open mode; U0001 holds exactly `role`.
    others = {f"{r.name.lower()}s": ["UOTHER"] for r in Role if r is not role}
    policy = AccessPolicy(**others, **{f"{role.name.lower()}s": ["U0001"]})  # type: ignore[arg-type]
    required = EXPECTED_REQUIRED_ROLE[permission]

    decision = policy.check("U0001", permission)

    assert decision.required_role is required
    assert decision.error is False
    if role >= required:
        assert decision.allowed, said(decision)
    else:
        assert not decision.allowed
        assert f"*{required.name.lower()}*" in said(decision)
        assert ROLE_SETTING[required] in said(decision)


def test_refusal_is_plain_words_naming_role_and_setting() -> None:
    policy = AccessPolicy(viewers=["U0001"], operators=["U0002"])

    decision = policy.check("U0001", Permission.CREATE)

    assert not decision.allowed
    assert said(decision) == (
        "You need the *operator* role to create snapshots. Ask an admin to add you to SNAPSHOT_OPERATORS."
    )


def test_user_without_any_role_is_refused_everything_once_roles_are_configured() -> None:
    policy = AccessPolicy(admins=["UADMIN"])

    assert not policy.open_mode
    assert policy.role_of("USTRANGER") is None
    for permission in Permission:
        decision = policy.check("USTRANGER", permission)
        assert not decision.allowed
        assert not decision.error


def test_roles_are_cumulative_and_role_of_gives_the_highest() -> None:
    policy = AccessPolicy(
        viewers=["U0001", "U0004"], operators=["U0002", "U0004"], approvers=["U0003"], admins=["U0004"]
    )

    assert policy.role_of("U0001") is Role.VIEWER
    assert policy.role_of("U0002") is Role.OPERATOR
    assert policy.role_of("U0003") is Role.APPROVER
    assert policy.role_of("U0004") is Role.ADMIN
    # An admin need not be listed anywhere else to do what the lower roles do.
    assert policy.check("U0004", Permission.LIST).allowed
    assert policy.check("U0003", Permission.DELETE).allowed
    assert not policy.check("U0003", Permission.AUDIT_READ_ALL).allowed


def test_identity_is_the_user_id_only() -> None:
    policy = AccessPolicy(operators=["U0001"])

    assert not policy.check("u0001", Permission.CREATE).allowed
    assert not policy.check("U0001 ", Permission.CREATE).allowed
    with pytest.raises(ValueError, match="SNAPSHOT_OPERATORS"):
        AccessPolicy(operators=["alice"])
    with pytest.raises(ValueError, match="not a Slack user"):
        AccessPolicy(admins=["@bob"])


def test_group_members_get_the_groups_role() -> None:
    resolver = FakeResolver({"SOPS": ["U0005", "U0006"]})
    policy = AccessPolicy(operators=["SOPS"], resolve_group=resolver)

    assert policy.check("U0005", Permission.CREATE).allowed
    assert policy.role_of("U0006") is Role.OPERATOR
    refused = policy.check("U0007", Permission.CREATE)
    assert not refused.allowed and not refused.error
    assert resolver.calls == ["SOPS"]


def test_group_members_are_cached_for_cache_seconds() -> None:
    clock = FakeClock()
    resolver = FakeResolver({"SOPS": ["U0005"]})
    policy = AccessPolicy(operators=["SOPS"], resolve_group=resolver, cache_seconds=60, clock=clock)

    assert policy.check("U0005", Permission.CREATE).allowed
    clock.advance(59.9)
    assert policy.check("U0005", Permission.DELETE).allowed
    assert not policy.check("U0006", Permission.DELETE).allowed
    assert resolver.calls == ["SOPS"]

    # Membership changed in Slack: seen once the cached answer has expired.
    resolver.groups["SOPS"] = ["U0006"]
    clock.advance(0.2)
    assert policy.check("U0006", Permission.CREATE).allowed
    assert not policy.check("U0005", Permission.CREATE).allowed
    assert resolver.calls == ["SOPS", "SOPS"]


def test_failing_group_lookup_refuses_with_error_and_is_retried_next_time() -> None:
    clock = FakeClock()
    resolver = FakeResolver({"SOPS": ["U0005"]})
    resolver.failing["SOPS"] = RuntimeError(f"ratelimited (token {SLACK_TOKEN})")
    policy = AccessPolicy(operators=["SOPS"], resolve_group=resolver, clock=clock)

    decision = policy.check("U0005", Permission.CREATE)

    assert not decision.allowed
    assert decision.error is True
    assert decision.required_role is Role.OPERATOR
    assert said(decision).startswith("Couldn't check your group membership with Slack (ratelimited")
    assert "so access is refused" in said(decision)
    assert SLACK_TOKEN not in said(decision)
    with pytest.raises(GroupResolutionError) as raised:
        policy.role_of("U0005")
    assert SLACK_TOKEN not in str(raised.value)

    # The failure was not cached: no clock movement needed for the next call to ask Slack again.
    del resolver.failing["SOPS"]
    assert policy.check("U0005", Permission.CREATE).allowed
    assert resolver.calls == ["SOPS", "SOPS", "SOPS"]


def test_failure_after_expiry_does_not_fall_back_to_the_stale_answer() -> None:
    clock = FakeClock()
    resolver = FakeResolver({"SOPS": ["U0005"]})
    policy = AccessPolicy(operators=["SOPS"], resolve_group=resolver, cache_seconds=60, clock=clock)
    assert policy.check("U0005", Permission.CREATE).allowed

    clock.advance(61)
    resolver.failing["SOPS"] = ConnectionError("slack.com unreachable")
    decision = policy.check("U0005", Permission.CREATE)

    assert not decision.allowed and decision.error
    assert "slack.com unreachable" in said(decision)


def test_listed_user_is_not_refused_because_a_group_lookup_failed() -> None:
    resolver = FakeResolver({})
    resolver.failing["SVIEW"] = RuntimeError("boom")
    resolver.failing["SADMIN"] = RuntimeError("boom")
    policy = AccessPolicy(viewers=["SVIEW"], operators=["U0001"], admins=["SADMIN"], resolve_group=resolver)

    assert policy.check("U0001", Permission.CREATE).allowed
    assert policy.check("U0001", Permission.LIST).allowed
    assert resolver.calls == []  # the explicit entry answered; no group was asked
    # Approving needs a role U0001 might only have through the failing admin group: refused, as an error.
    approve = policy.check("U0001", Permission.APPROVE)
    assert not approve.allowed and approve.error
    assert resolver.calls == ["SADMIN"]


def test_user_only_reachable_through_a_failing_group_is_refused() -> None:
    resolver = FakeResolver({"SOK": ["U0002"]})
    resolver.failing["SBROKEN"] = TimeoutError("timed out")
    policy = AccessPolicy(operators=["SBROKEN", "SOK"], resolve_group=resolver)

    # Another group answering yes is enough; the failing one only matters when nothing else says yes.
    assert policy.check("U0002", Permission.CREATE).allowed
    refused = policy.check("U0003", Permission.CREATE)
    assert not refused.allowed and refused.error
    assert "timed out" in said(refused)


def test_role_of_raises_only_when_a_failing_group_could_give_a_higher_role() -> None:
    resolver = FakeResolver({})
    resolver.failing["SADMIN"] = RuntimeError("boom")
    resolver.failing["SVIEW"] = RuntimeError("boom")
    policy = AccessPolicy(viewers=["SVIEW"], approvers=["U0001"], admins=["SADMIN"], resolve_group=resolver)

    with pytest.raises(GroupResolutionError, match="SADMIN"):
        policy.role_of("U0001")
    resolver.failing.pop("SADMIN")
    resolver.groups["SADMIN"] = []
    assert policy.role_of("U0001") is Role.APPROVER  # the failing viewer group is below: not asked


def test_groups_without_a_resolver_fail_closed() -> None:
    policy = AccessPolicy(operators=["SOPS", "U0001"], resolve_group=None)

    assert policy.check("U0001", Permission.CREATE).allowed
    decision = policy.check("U0002", Permission.CREATE)
    assert not decision.allowed and decision.error
    assert "without a Slack connection" in said(decision)


def test_a_bug_in_the_resolver_is_a_refusal_not_a_crash() -> None:
    policy = AccessPolicy(operators=["SOPS"], resolve_group=lambda group_id: None)  # type: ignore[arg-type,return-value]

    decision = policy.check("U0001", Permission.CREATE)

    assert not decision.allowed and decision.error


def test_an_unknown_permission_is_refused_even_in_open_mode() -> None:
    decision = AccessPolicy().check("U0001", "snapshot.everything")  # type: ignore[arg-type]

    assert not decision.allowed and decision.error


def test_channel_allow_list() -> None:
    anywhere = AccessPolicy(operators=["U0001"])
    assert anywhere.check_channel("C1").allowed
    assert anywhere.check_channel(None).allowed

    policy = AccessPolicy(operators=["U0001"], allowed_channels=["COPS", "GPRIV"])
    assert policy.check_channel("COPS").allowed
    assert policy.check_channel("GPRIV").allowed
    refused = policy.check_channel("CRANDOM")
    assert not refused.allowed
    assert said(refused) == "Snapshot commands can only be used in <#COPS>, <#GPRIV>."
    assert not policy.check_channel(None).allowed  # unknown channel: the restriction fails closed
    assert not policy.check_channel("DDIRECT").allowed


def test_open_mode_allows_every_permission_to_everyone() -> None:
    policy = AccessPolicy()

    assert policy.open_mode
    for permission in Permission:
        decision = policy.check("UANYONE", permission)
        assert decision.allowed
        assert decision.required_role is EXPECTED_REQUIRED_ROLE[permission]
    assert policy.role_of("UANYONE") is Role.ADMIN
    assert render(policy.describe()) == (
        "Access control is OFF: everyone in the workspace can create, delete and request restores."
    )


def test_a_single_group_entry_turns_open_mode_off() -> None:
    policy = AccessPolicy(viewers=["SALL"], resolve_group=FakeResolver({"SALL": []}))

    assert not policy.open_mode
    assert not policy.check("U0001", Permission.LIST).allowed


def test_describe_summarises_roles_and_channels() -> None:
    policy = AccessPolicy(operators=["U0001", "U0002", "SOPS"], admins=["U0009"], allowed_channels=["COPS"])

    assert render(policy.describe()) == (
        "Access control is ON (each role includes the ones below it) — admins: 1 user; "
        "operators: 2 users and 1 group. Commands work only in <#COPS>."
    )


def test_from_settings() -> None:
    settings = load_settings(
        {
            "SNAPSHOT_VIEWERS": "U0001",
            "SNAPSHOT_OPERATORS": "U0002,SOPS",
            "SNAPSHOT_APPROVERS": "W0003",
            "SNAPSHOT_ADMINS": "U0004",
            "SNAPSHOT_ALLOWED_CHANNELS": "COPS",
        },
        dotenv_path=None,
    )
    resolver = FakeResolver({"SOPS": ["U0005"]})

    policy = AccessPolicy.from_settings(settings, resolver)

    assert not policy.open_mode
    assert [policy.role_of(u) for u in ("U0001", "U0002", "W0003", "U0004", "U0005", "U0006")] == [
        Role.VIEWER,
        Role.OPERATOR,
        Role.APPROVER,
        Role.ADMIN,
        Role.OPERATOR,
        None,
    ]
    assert policy.check_channel("COPS").allowed
    assert not policy.check_channel("COTHER").allowed


def test_from_settings_without_roles_is_open_mode() -> None:
    policy = AccessPolicy.from_settings(load_settings({}, dotenv_path=None), None)

    assert policy.open_mode
    assert policy.check("U0001", Permission.DELETE).allowed
    assert policy.check_channel("CANY").allowed


def said(decision: Decision) -> str:
    """The decision's reason as the user reads it in Slack."""
    return render(decision.reason)
