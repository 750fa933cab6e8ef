"""Shared by the checkpoint tests (unit and scenario): a fixed start time, a clock that ticks a second per reading,
and a fresh Ed25519 signing key written to a PEM file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.signing import Signer, generate_key_file

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVERY = 100


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def key(tmp_path: Path) -> Signer:
    return generate_key_file(tmp_path / "signing.pem")


@pytest.fixture
def clock() -> Clock:
    return Clock()
