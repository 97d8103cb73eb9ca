"""Fixtures shared by the integration and e2e tiers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.pgserver import PgServer


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A real PostgreSQL server on 127.0.0.1, started once per session by the test run."""
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.cleanup()
