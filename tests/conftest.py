"""Shared fixtures: each plugin module owns one concern (VPS.org simulator, database, fake Slack, whole app)."""

from pathlib import Path

_HERE = Path(__file__).parent
pytest_plugins = [
    f"tests.{name}"
    for name in ("vps_fixtures", "db_fixtures", "slack_fixtures", "app_fixtures", "checkpoint_fixtures")
    if (_HERE / f"{name}.py").exists()
]

# Hypothesis budgets (tests/budgets.py): `make test` runs the quick profile, plain pytest the full one.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

from tests.budgets import QUICK, quick  # noqa: E402

_hypothesis_settings.register_profile(QUICK, max_examples=25)
_hypothesis_settings.register_profile("full")
_hypothesis_settings.load_profile(QUICK if quick() else "full")
