"""Development tools, kept out of the production package and its wheel: the fake Slack Web API
(`devkit.fake_slack`), the fake Socket Mode server, the Slack driver that sends signed Slack-shaped requests,
the one threaded loopback WSGI server, the VPS.org simulator with its fault knobs (`devkit.simulator`), local
settings for a bot wired to them (`devkit.local`) and the local shell (`devkit.shell`).

Rules: `bot` and `storage` never import devkit at module level; the only production entry points that use it
(`python -m bot shell`, `simulate-vps`, and `python -m bot` without Slack tokens) import it lazily and say what
to install when it is missing. Everything here binds to loopback only. Importing `devkit` itself loads nothing.
"""
