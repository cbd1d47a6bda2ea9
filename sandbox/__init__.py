"""Offline stand-in for the Mountsea image API, for tests, benchmarks and trying the bot."""
