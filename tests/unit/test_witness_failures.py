"""Witness failures reach the metrics (the "checkpoint witness failing" alert): a file it cannot append to, and
the round after that succeeds counts nothing more."""

from __future__ import annotations

from pathlib import Path

from bot.audit_witness import Witness
from bot.config import load_settings
from bot.metrics import Metrics
from storage.audit import AuditEntry, AuditLog
from storage.db import Database
from storage.signing import Signer
from tests.checkpoint_fixtures import Clock


def failures(metrics: Metrics, step: str) -> float:
    return metrics.registry.get_sample_value("snapshot_bot_witness_failures_total", {"step": step}) or 0.0


def test_a_file_that_cannot_be_written_counts_once_per_failed_round(
    database: Database, key: Signer, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-file"
    blocked.mkdir()  # a directory where the file should be: every append fails
    settings = load_settings(
        {"AUDIT_SIGNING_KEY": str(tmp_path / "signing.pem"), "AUDIT_CHECKPOINT_EVERY": "5",
         "AUDIT_CHECKPOINT_FILE": str(blocked)},
        dotenv_path=None,
    )  # fmt: skip
    metrics = Metrics()
    witness = Witness(database, settings, key, None, on_failure=metrics.witness_failed)
    AuditLog(database, clock=Clock()).append_many(
        [AuditEntry(action="list", outcome="ok", actor_id="U0USER1", details={"n": n}) for n in range(10)]
    )
    assert witness.run_once()  # checkpoints are still made in the database
    witness.run_once()
    assert failures(metrics, "file") == 2
    blocked.rmdir()
    witness.run_once()
    assert failures(metrics, "file") == 2 and blocked.read_text().count("\n") == 2
    assert failures(metrics, "sign") == failures(metrics, "refused") == 0
