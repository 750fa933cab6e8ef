"""Slack listeners grouped by feature, each module with its `register(app, core, slack)` (`audit`: `core` only).

Thin: parse, ack, call a use case, render. `commands` routes `/snapshot …` to the features; `common` (who acts,
the work after ack), `answering` (where an answer goes), `forms` (reading a submitted form) and `request_cards`
(a request and its card) are shared; no feature imports `commands`, and no module imports in a circle
(tests/unit/test_import_circles.py).
"""
