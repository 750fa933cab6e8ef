"""compose.yaml and the Dockerfile agree with each other and with the bot (no container daemon here to run them):
PostgreSQL with a volume and a healthcheck, migrations once before the bot, tokens only from `.env`, the demo
profile's simulator from the image's demo target, and every file the image copies let through .dockerignore."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def dockerfile_stages() -> set[str]:
    return set(re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))


def test_postgres_keeps_its_data_and_says_when_it_is_healthy() -> None:
    services = compose()["services"]
    postgres = services["postgres"]
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert postgres["volumes"][0].split(":")[0] in compose()["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ports" not in postgres  # reachable from the bot's network only


def test_migrations_run_once_before_the_bot_which_waits_for_both() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    waits = services["bot"]["depends_on"]
    assert waits["postgres"]["condition"] == "service_healthy"
    assert waits["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["environment"]["DATABASE_URL"] == services["bot"]["environment"]["DATABASE_URL"]
    assert services["bot"]["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")


def test_tokens_come_from_dot_env_and_no_secret_is_written_in_the_file() -> None:
    bot = compose()["services"]["bot"]
    assert bot["env_file"] == [{"path": ".env", "required": True}]
    text = (ROOT / "compose.yaml").read_text()
    assert not re.search(r"xox[bpa]-|xapp-|SLACK_SIGNING_SECRET", text)


def test_the_bot_is_read_only_with_a_tmp_and_drains_before_it_is_killed() -> None:
    bot = compose()["services"]["bot"]
    assert bot["read_only"] is True and "/tmp" in bot["tmpfs"]
    assert int(bot["stop_grace_period"].rstrip("s")) > 25 + 5  # SNAPSHOT_DRAIN_SECONDS + gunicorn's margin
    probe = bot["healthcheck"]["test"][-1]
    assert "/readyz" in probe
    for port in (bot["environment"]["PORT"], bot["environment"]["HEALTH_PORT"]):
        assert port in probe


def test_the_demo_profile_adds_the_simulator_from_the_images_demo_target() -> None:
    services = compose()["services"]
    simulator = services["vps-simulator"]
    assert simulator["profiles"] == ["demo"]
    assert simulator["build"]["target"] == "demo"
    assert simulator["command"][0] == "simulate-vps"
    port = simulator["command"][simulator["command"].index("--port") + 1]
    assert f"http://vps-simulator:{port}/api/v1/" in services["bot"]["environment"]["VPS_API_URL"]
    assert services["bot"]["depends_on"]["vps-simulator"]["required"] is False
    assert [s for s, spec in services.items() if "profiles" in spec] == ["vps-simulator"]


def test_compose_build_targets_are_stages_of_the_dockerfile() -> None:
    targets = {spec["build"]["target"] for spec in compose()["services"].values() if "build" in spec}
    assert targets <= dockerfile_stages()
    assert {"build", "runtime", "demo", "production"} <= dockerfile_stages()


def test_the_image_installs_with_hashes_runs_as_a_numeric_user_and_defaults_to_serve() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in text and "-r requirements.lock" in text and "--no-deps" in text
    assert re.search(r"^USER \d+:\d+$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["snapshot-bot"]' in text and 'CMD ["serve"]' in text
    assert text.rstrip().splitlines()[-1].startswith("FROM runtime AS")  # `docker build .` is the production image


def test_every_file_the_image_copies_gets_through_dockerignore() -> None:
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]

    def included(path: str) -> bool:
        verdict = True
        for rule in rules:
            negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                verdict = negate
        return verdict

    copied = re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    sources = [source for line in copied for source in line.split()]
    assert sources, "found no COPY lines: the scan is broken"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert included(source), f"{source} is excluded by .dockerignore"
    assert not included(".env") and not included(".venv") and not included(".git")
