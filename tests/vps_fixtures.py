"""Pytest fixtures for the VPS.org client and simulator, loaded as a plugin by the shared conftest.

`vps_sim` is a fresh seeded simulator whose new snapshots complete on the next read (completion_delay=0).
`vps_client` talks to it in-process; its retry back-off does not sleep but records the delays it would have
slept in `vps_sleeps`. The base URL is a loopback address on the discard port, so a client built without the
in-process transport by mistake fails fast instead of reaching any real host.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.vps.client import VpsClient
from devkit.simulator import VpsSimulator

VPS_TEST_BASE_URL = "http://127.0.0.1:9/api/v1/"


@pytest.fixture
def vps_sim() -> VpsSimulator:
    return VpsSimulator(completion_delay=0)


@pytest.fixture
def vps_sleeps() -> list[float]:
    return []


@pytest.fixture
def vps_client(vps_sim: VpsSimulator, vps_sleeps: list[float]) -> Iterator[VpsClient]:
    client = VpsClient(VPS_TEST_BASE_URL, vps_sim.token, transport=vps_sim.transport(), sleep=vps_sleeps.append)
    yield client
    client.close()
