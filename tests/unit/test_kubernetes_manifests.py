"""The Kubernetes base keeps the promises docs/operations.md makes about it (CI also renders it with kubectl and
validates it against the API schema: .ci/deploy-checks). Read without kubectl: these are plain YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.config import Settings
from bot.server import GRACEFUL_MARGIN_SECONDS

BASE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "base"


def manifest(name: str) -> dict[str, Any]:
    return yaml.safe_load((BASE / name).read_text())


def test_two_non_root_replicas_with_a_read_only_root_and_resources() -> None:
    deployment = manifest("deployment.yaml")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"requests", "limits"} <= set(container["resources"])
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]


def test_the_grace_period_outlasts_the_drain_and_the_probes_use_the_new_endpoints() -> None:
    deployment = manifest("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    drain = float(manifest("configmap.yaml")["data"]["SNAPSHOT_DRAIN_SECONDS"])
    assert drain == Settings().drain_seconds
    assert pod["terminationGracePeriodSeconds"] > drain + GRACEFUL_MARGIN_SECONDS
    [container] = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_secrets_are_referenced_never_shipped() -> None:
    kinds = [
        yaml.safe_load(path.read_text())["kind"] for path in BASE.glob("*.yaml") if path.name != "kustomization.yaml"
    ]
    assert "Secret" not in kinds
    [container] = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert {"secretRef": {"name": "snapshot-bot"}} in container["envFrom"]
    config = manifest("configmap.yaml")["data"]
    assert not [key for key in config if "TOKEN" in key or "SECRET" in key or key == "DATABASE_URL"]


def test_the_migration_job_runs_db_upgrade_and_the_budget_keeps_one_pod() -> None:
    job = manifest("migration-job.yaml")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    assert manifest("poddisruptionbudget.yaml")["spec"]["minAvailable"] == 1
