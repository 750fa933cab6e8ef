"""Shared fixtures: each plugin module owns one concern (VPS.org simulator, database, fake Slack, whole app)."""

from pathlib import Path

_HERE = Path(__file__).parent
pytest_plugins = [
    f"tests.{name}"
    for name in ("vps_fixtures", "db_fixtures", "slack_fixtures", "app_fixtures", "checkpoint_fixtures")
    if (_HERE / f"{name}.py").exists()
]
