"""Integration tier: a real PostgreSQL server started on 127.0.0.1 by the test run, a fresh database per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import psycopg
import pytest

from tests.support.hubdb import PROPOSAL_DDL, SCION_DDL, execute
from tests.support.pgserver import PgServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def db(pg: PgServer) -> AsyncIterator[str]:
    """DSN of a new, empty database (dropped afterwards)."""
    name = "t_" + secrets.token_hex(6)
    await execute(pg.superuser_dsn, f"CREATE DATABASE {name}")
    try:
        yield pg.dsn(name)
    finally:
        async with await psycopg.AsyncConnection.connect(pg.superuser_dsn, autocommit=True) as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            await conn.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(params=["scion", "proposal"])
async def table(request: pytest.FixtureRequest, db: str) -> tuple[str, str]:
    """(profile, dsn) with the Hub's settings table created the way that Hub creates it."""
    profile: str = request.param
    await execute(db, SCION_DDL if profile == "scion" else PROPOSAL_DDL)
    return profile, db
