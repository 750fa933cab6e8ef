"""The audit benchmarks' action mix: which actions a team's trail holds, and how often (mostly lists)."""

ACTION_MIX = (  # (action, outcome, weight); create.completed is written by `system` alone in the correlated set
    ("list", "ok", 50),
    ("create.requested", "intent", 8),
    ("create.succeeded", "ok", 8),
    ("create.completed", "info", 7),
    ("delete.requested", "intent", 4),
    ("delete.succeeded", "ok", 4),
    ("restore.requested", "info", 2),
    ("restore.approved", "ok", 2),
    ("restore.executed", "ok", 2),
    ("refused.permission", "refused", 3),
    ("refused.validation", "refused", 3),
    ("audit.read", "ok", 5),
)
