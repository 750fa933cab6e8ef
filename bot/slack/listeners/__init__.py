"""Slack listeners, one module per kind, each with `register(app, services)`. Thin: parse, ack, hand over."""
