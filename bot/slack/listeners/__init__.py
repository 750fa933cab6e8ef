"""Slack listeners, one module per kind, each with `register(app, core, slack)`. Thin: parse, ack, hand over."""
