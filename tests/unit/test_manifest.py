"""manifest.yml declares what the code uses: the command, the request URLs, and exactly the scopes needed."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Web API methods the bot calls → the bot scope each needs (None: no scope needed).
SCOPE_OF = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": None,
    "views_open": None,
    "views_update": None,
    "views_publish": None,
    "usergroups_users_list": "usergroups:read",
    "auth_test": None,
}
# Methods only an optional operator command calls; their scope is documented, not in the default manifest.
OPTIONAL_SCOPE_OF = {
    "conversations_history": "channels:history",  # `audit checkpoints --from-slack` (groups:history if private)
}


def web_api_methods_used() -> set[str]:
    used: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):  # the production package only: devkit/ is not shipped
        used |= set(re.findall(r"client\.((?:chat|views|usergroups|users|conversations|auth)_\w+)\(", path.read_text()))
    return used


def test_manifest_scopes_are_exactly_what_the_code_needs() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    used = web_api_methods_used()
    assert used, "found no Web API calls: the scan is broken"
    unknown = used - SCOPE_OF.keys() - OPTIONAL_SCOPE_OF.keys()
    assert not unknown, f"add these methods to SCOPE_OF and the manifest: {unknown}"
    needed = {SCOPE_OF[m] for m in used if m in SCOPE_OF} - {None} | {"commands"}
    setup = (ROOT / "README.md").read_text()  # the Slack set-up steps live in the README
    assert all(scope in setup for scope in OPTIONAL_SCOPE_OF.values()), "document the optional scopes"
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed


def test_manifest_declares_command_interactivity_home_and_events() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/snapshot"
    assert command["url"].endswith("/slack/events") and command["should_escape"] is True
    assert "restore" in command["usage_hint"]
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    # The create form's server select loads its options (block_suggestion) from the same endpoint.
    assert settings["interactivity"]["message_menu_options_url"] == settings["interactivity"]["request_url"]
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_procfile_runs_migrations_on_release_and_serves_web() -> None:
    lines = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert lines == {"release": "python -m bot db upgrade", "web": "python -m bot serve"}


def test_env_example_documents_every_setting_the_code_reads() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    config = (ROOT / "bot" / "config.py").read_text()
    read = set(re.findall(r'"((?:SLACK|VPS|SNAPSHOT|RESTORE|APPROVAL|DATABASE|PORT|LOG|AUDIT)[A-Z_]*)"', config))
    read |= {"WEB_CONCURRENCY"}
    assert read <= documented, f"undocumented: {read - documented}"
    operations = (ROOT / "docs" / "operations.md").read_text()  # its configuration table; see tests/unit/test_docs.py
    missing = {name for name in documented if name not in operations}
    assert not missing, f"not in docs/operations.md: {missing}"
