"""Test doubles shared by the tests and the benchmarks: the fake Discord (gateway and REST)."""
