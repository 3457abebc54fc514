"""Shared fixtures: the simulator (with the session-wide read-only audit) and the local TSA."""

pytest_plugins = ["tests.simulator_fixture", "tests.tsa_fixture"]
