"""deploy/prometheus/alerts.yml: every rule is well formed, and every metric its expressions name is one the bot
exports (a renamed metric would otherwise leave an alert that can never fire)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.metrics import Metrics

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created")}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def exported() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def metric_names(expr: str) -> set[str]:
    """Series names in a PromQL expression: identifiers that are not functions, keywords or label names."""
    text = re.sub(r'"[^"]*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = GROUPING.sub("", text)  # by (label, …) and the like
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word, rest = match.group(), text[match.end() :].lstrip()
        if word in KEYWORDS or rest.startswith("("):
            continue
        found.add(word)
    return found


def test_the_scan_finds_series_and_skips_functions_labels_and_keywords() -> None:
    expr = 'sum by (step) (increase(snapshot_bot_x_total{step="a"}[10m])) > 0 and on (id) absent(up) or time() > 1'
    assert metric_names(expr) == {"snapshot_bot_x_total", "up"}


def test_every_rule_is_well_formed() -> None:
    found = rules()
    assert len(found) >= 6
    for rule in found:
        assert re.fullmatch(r"SnapshotBot[A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", rule["for"])
    assert len({rule["alert"] for rule in found}) == len(found)


def test_every_expression_names_only_metrics_the_bot_exports() -> None:
    known = exported()
    for rule in rules():
        named = metric_names(rule["expr"])
        assert named, f"{rule['alert']} names no metric"
        assert named <= known, f"{rule['alert']} names metrics the bot does not export: {named - known}"


def test_the_alerts_the_issue_asks_for_are_there() -> None:
    wanted = {
        "snapshot_bot_schedule_last_success_timestamp_seconds",  # backups stopped
        "snapshot_bot_approval_requests_open",  # requests waiting too long
        "snapshot_bot_requests_outcome_unknown",
        "snapshot_bot_witness_failures_total",
        "snapshot_bot_ready",
    }
    assert wanted <= set().union(*(metric_names(rule["expr"]) for rule in rules()))
