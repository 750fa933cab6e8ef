"""bot/metrics.py and its edges: labels stay bounded whatever arrives, and the multiprocess directory starts clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.metrics import Metrics, slack_error_label, vps_endpoint_label, vps_status_label
from bot.metrics_server import MULTIPROC_ENV, prepare_multiprocess_dir
from bot.slack.middleware.ack_timing import command_label


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("snapshots/", "snapshots/"),
        ("snapshots/812/", "snapshots/{id}/"),
        ("snapshots/812/restore/", "snapshots/{id}/restore/"),
        ("account/me/", "account/me/"),
        ("snapshots/<script>/", "other"),
        ("snapshots/812/restore/../../admin/", "other"),
    ],
)
def test_vps_paths_become_templates_and_anything_unexpected_other(path: str, label: str) -> None:
    assert vps_endpoint_label(path) == label


def test_statuses_and_slack_errors_are_folded_into_a_small_vocabulary() -> None:
    assert vps_status_label(None) == "error" and vps_status_label(503) == "503" and vps_status_label(999) == "other"
    assert slack_error_label("channel_not_found") == "channel_not_found"
    assert slack_error_label("Robert'); DROP TABLE") == "other" and slack_error_label("x" * 200) == "other"


@pytest.mark.parametrize(
    ("body", "label"),
    [
        ({"command": "/snapshot", "text": "list 12345"}, "list"),
        ({"command": "/snapshot", "text": "RESTORE 801 incident-42"}, "restore"),
        ({"command": "/snapshot", "text": ""}, "help"),
        ({"command": "/snapshot", "text": "<!channel> hello"}, "unknown"),
        ({"type": "block_actions"}, "block_actions"),
        ({"type": "event_callback", "event": {"type": "app_home_opened"}}, "event:app_home_opened"),
        ({"type": "event_callback", "event": {"type": "made_up_event"}}, "event:other"),
        ({"type": "<b>"}, "other"),
        ("not a dict", "other"),
    ],
)
def test_ack_labels_never_carry_what_the_user_typed(body: object, label: str) -> None:
    assert command_label(body) == label


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # two bots in one process (tests, the shell) must not clash
    first.acked("list", 0.01)
    assert first.registry.get_sample_value("snapshot_bot_acks_total", {"command": "list"}) == 1
    assert second.registry.get_sample_value("snapshot_bot_acks_total", {"command": "list"}) is None


def test_an_operators_multiprocess_directory_is_emptied_of_old_values(tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    env = {MULTIPROC_ENV: str(tmp_path)}
    prepared = prepare_multiprocess_dir(env)
    assert prepared.path == tmp_path and not prepared.owned
    assert not list(tmp_path.glob("*.db")) and (tmp_path / "keep.txt").exists()
    prepared.remove()  # not ours to delete
    assert tmp_path.exists()


def test_without_a_directory_a_fresh_one_is_made_set_and_removed() -> None:
    env: dict[str, str] = {}
    prepared = prepare_multiprocess_dir(env)
    try:
        assert prepared.owned and env[MULTIPROC_ENV] == str(prepared.path) and prepared.path.is_dir()
    finally:
        prepared.remove()
    assert not prepared.path.exists()
