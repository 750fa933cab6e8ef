"""What the bot does, independent of Slack: each use case takes plain values and returns plain results."""
