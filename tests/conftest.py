"""Shared fixtures: the simulator (with the session-wide read-only audit), the local TSA and a
throwaway PostgreSQL server."""

pytest_plugins = ["tests.simulator_fixture", "tests.tsa_fixture", "tests.postgres_fixture"]
