"""Settings for a bot wired to the fake Slack and the VPS.org simulator: one place for tests, benchmarks and soak."""

from __future__ import annotations

from typing import Protocol

from devkit.fake_slack import FakeSlack

LOCAL_SIGNING_SECRET = "local-signing-secret-0123456789"
# A loopback discard-port URL: never dialled when the simulator's in-process transport is used, and a bot built
# without that transport by mistake fails at once instead of reaching a real host.
IN_PROCESS_VPS_URL = "http://127.0.0.1:9/api/v1/"


class VpsUpstream(Protocol):
    """What the bot needs to know of its VPS.org: the token (a VpsSimulator, or one served by another process)."""

    token: str


def local_env(
    fake: FakeSlack,
    sim: VpsUpstream,
    database_url: str,
    *,
    vps_url: str = IN_PROCESS_VPS_URL,
    signing_secret: str = LOCAL_SIGNING_SECRET,
    **overrides: str,
) -> dict[str, str]:
    """The environment (as `load_settings` reads it) of a bot talking to `fake` and `sim`; `overrides` win."""
    return {
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": fake.api_url,
        "VPS_API_URL": vps_url,
        "VPS_API_TOKEN": sim.token,
        "DATABASE_URL": database_url,
        **overrides,
    }
