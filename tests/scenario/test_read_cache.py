"""Reads that cost nothing (issue 24 §5) and per-server claims from incomplete listings (issue 27 §1), through the
real app: signed `app_home_opened` events, slash commands and clicks, counting what the simulator received."""

from __future__ import annotations

import time
from collections.abc import Callable

from devkit.fake_slack import FakeView, blocks_text
from tests.app_fixtures import ALICE, BOB, Harness


def gets(h: Harness, path: str = "") -> list[object]:
    return [r for r in h.sim.requests if r.method == "GET" and r.path.endswith(path)]


def open_homes(h: Harness, user: str, times: int) -> None:
    """`times` signed app_home_opened events, each acknowledged, then wait (with a deadline) for every publish."""
    published = len(h.slack.calls_to("views.publish"))
    for _ in range(times):
        assert h.driver.app_home_opened(user).status == 200
    h.slack.wait_for("views.publish", count=published + times, timeout=30)
    h.settle()


def home_text(h: Harness, user: str) -> str:
    view: FakeView | None = h.slack.home_view(user)
    assert view is not None
    return blocks_text(view.view["blocks"])


def freeze_cache_clock(h: Harness) -> list[float]:
    """The listing cache's clock, moved only by the test (so a busy machine cannot age a listing)."""
    now = [1000.0]
    h.bot.core.snapshots.listings.clock = lambda: now[0]
    return now


def test_thirty_home_opens_within_five_seconds_cost_at_most_six_gets(harness: Harness) -> None:
    h = harness
    now = freeze_cache_clock(h)
    assert h.bot.core.home.listings is h.bot.core.snapshots.listings  # one cache, not two
    open_homes(h, ALICE, 15)
    now[0] += 4.9
    open_homes(h, ALICE, 15)
    assert len(gets(h)) <= 6
    assert [(r.path, r.query) for r in gets(h)] == [("/api/v1/snapshots/", {}), ("/api/v1/servers/", {})]  # type: ignore[attr-defined]
    assert "`web-server-01` (id 12345) · active — 2 of 5 snapshots" in home_text(h, ALICE)

    now[0] += 15  # past SNAPSHOT_READ_CACHE_SECONDS (15 s): read again, once
    open_homes(h, ALICE, 3)
    assert len(gets(h)) == 4


def test_people_in_one_workspace_share_the_listing_and_the_picker_reads_it_too(harness: Harness) -> None:
    h = harness
    freeze_cache_clock(h)
    open_homes(h, ALICE, 1)
    h.run("list", user=BOB)
    assert len(gets(h)) == 2
    assert h.command("create", user=BOB).status == 200
    form = h.slack.wait_for("views.open")[-1].args["view"]
    answer = h.driver.block_suggestion("create_server", "cache", user_id=BOB, block_id="server", view=form)
    assert "cache-01" in answer.body
    assert len(gets(h, "/servers/")) == 1  # the picker's servers came from the same cache


def test_the_bots_own_write_makes_the_cache_stale_at_once(harness: Harness) -> None:
    h = harness
    freeze_cache_clock(h)
    open_homes(h, ALICE, 1)
    assert "`cache-01` (id 12347) · active — 0 of 5 snapshots" in home_text(h, ALICE)
    h.run("create 12347 just-made", user=BOB)
    listed = len(gets(h, "/snapshots/"))
    open_homes(h, ALICE, 1)
    text = home_text(h, ALICE)
    assert "`cache-01` (id 12347) · active — 1 of 5 snapshots" in text and "`just-made`" in text
    assert len(gets(h, "/snapshots/")) == listed + 1


def test_the_checks_before_a_delete_never_read_the_cache(harness: Harness) -> None:
    h = harness
    freeze_cache_clock(h)
    h.run("list 12345")
    assert "pre-migration-snapshot" in h.last_ephemeral().visible_text
    h.sim.remove_snapshot(801)  # gone behind the bot's back, while the cached listing still shows it
    h.run("delete 801")
    assert "does not exist" in h.last_ephemeral().visible_text
    assert h.mutating_calls() == []


def test_past_the_read_limit_the_last_listing_is_shown_with_its_age_or_try_again(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(SNAPSHOT_READ_LIMIT="2/minute", SNAPSHOT_READ_CACHE_SECONDS="0")
    h.run("list")  # two listings fetched (snapshots, servers): the whole allowance
    assert len(gets(h)) == 2
    h.run("list")
    text = h.last_ephemeral().visible_text
    assert "SNAPSHOT_READ_LIMIT" in text and "listed" in text and "web-server-01" in text
    open_homes(h, ALICE, 1)
    assert "read limit" in home_text(h, ALICE) and "web-server-01" in home_text(h, ALICE)
    h.run("list 12346")  # nothing cached for this filter: a clear "try again"
    refused = h.last_ephemeral().visible_text
    assert "Try again in" in refused and "SNAPSHOT_READ_LIMIT" in refused
    assert len(gets(h)) == 2  # nothing more reached VPS.org
    assert next(r.outcome for r in h.audit(action="list")) == "refused"

    h.run("list", user=BOB)  # another person has an allowance of their own
    assert len(gets(h)) == 4
    assert "SNAPSHOT_READ_LIMIT" not in h.last_ephemeral(BOB).visible_text


def test_an_incomplete_listing_never_claims_a_servers_count(harness: Harness) -> None:
    h = harness
    h.sim.faults.hide_in_lists(805, 806, 807)  # db-server-01's snapshots: counted by VPS.org, not sent
    h.run("list")
    text = h.last_ephemeral().visible_text
    assert "VPS.org reports 10; some could not be fetched" in text
    db = text[text.index("db-server-01") :]
    db = db[: db.index("legacy-01") if "legacy-01" in db else len(db)]
    assert "0 of 5" not in db and "No snapshots yet" not in db
    assert "None of its snapshots were in what VPS.org sent" in db
    assert "of 5 snapshots" not in text  # no server's count is claimed from this listing

    open_homes(h, ALICE, 1)
    home = home_text(h, ALICE)
    assert "`db-server-01` (id 12346) · active — 0 listed, maybe more" in home
    assert "of 5 snapshots" not in home and "VPS.org counts 10 snapshots" in home


def test_a_slow_first_reader_does_not_hold_a_second_one_past_its_deadline(harness: Harness) -> None:
    """The create form's picker waits for a listing already under way only as long as Slack waits for options."""
    h = harness
    h.sim.faults.latency = 4.0
    h.command("list", user=BOB)  # its fetch of the server list is now under way, slowly
    assert h.command("create").status == 200
    form = h.slack.wait_for("views.open", timeout=20)[-1].args["view"]
    started = time.monotonic()
    answer = h.driver.block_suggestion("create_server", "", user_id=ALICE, block_id="server", view=form)
    assert answer.status == 200 and time.monotonic() - started < 3.0
    h.sim.faults.latency = 0
    h.settle(30)
