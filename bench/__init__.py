"""Benchmarks of imagine-bot: `python -m bench [--quick]` prints a table and writes bench/results.json.

Every scenario runs on 127.0.0.1 against the sandbox image API and, where Discord is involved, the fake
Discord from tests/. This package imports nothing heavy at import time, so the load worker's
resident-memory figure is the runner's, not discord.py's.
"""
