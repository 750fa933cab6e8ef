"""Benchmarks for snapshot-bot (issue 9): `python -m bench [--quick|--smoke] [--only NAME]`.

Each benchmark measures the bot against a baseline run in the same process tree on the same machine and
prints one row per measurement: what, load, result, baseline, ratio, target, verdict. See BENCHMARKS.md for
the latest table and what limits each number.
"""
