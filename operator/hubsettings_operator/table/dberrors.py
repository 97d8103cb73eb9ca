"""The one place database failures become the project's typed errors (`errors.py`).

Every psycopg or socket error raised by the table layer goes through `database_errors`, so each failure has
one printable class and message, and no message ever shows the DSN or its password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pgerrors

from hubsettings_operator.errors import (
    ConcurrentWrite,
    DatabaseUnavailable,
    HubSettingsError,
    PermissionDenied,
    SchemaMismatch,
    WaitingForConnection,
)
from hubsettings_operator.redact import describe_dsn


class PoolSaturated(Exception):
    """The operator's own connection cap stayed full for the whole bounded wait (or, for a probe that does not
    queue, is full now): the database is not at fault."""


def map_error(exc: BaseException, dsn: str) -> HubSettingsError:
    """A typed, printable error for a database failure. The DSN is described, never shown."""
    where = describe_dsn(dsn)
    if isinstance(exc, HubSettingsError):
        return exc
    if isinstance(exc, pgerrors.InsufficientPrivilege):
        return PermissionDenied(
            f"permission denied on {where}: {first_line(exc)}; grant the role SELECT, INSERT, UPDATE, DELETE "
            "on the settings table (and CREATE on the schema for createTable)"
        )
    if isinstance(exc, pgerrors.UndefinedTable | pgerrors.UndefinedColumn | pgerrors.DatatypeMismatch):
        return SchemaMismatch(
            f"settings table does not match the expected layout on {where}: {first_line(exc)}"
        )
    if isinstance(exc, pgerrors.QueryCanceled | pgerrors.LockNotAvailable):
        return DatabaseUnavailable(
            f"database {where} too slow: {first_line(exc)} (statement or lock timeout)"
        )
    if isinstance(exc, pgerrors.UniqueViolation | pgerrors.SerializationFailure | pgerrors.DeadlockDetected):
        return ConcurrentWrite(f"concurrent write on {where}: {first_line(exc)}")
    if isinstance(exc, PoolSaturated):
        return WaitingForConnection(f"waiting for one of the operator's database connections: {exc}")
    if isinstance(exc, psycopg.OperationalError | OSError):
        return DatabaseUnavailable(f"database {where} unavailable: {first_line(exc)}")
    if isinstance(exc, psycopg.Error):
        return DatabaseUnavailable(f"database error on {where}: {type(exc).__name__}: {first_line(exc)}")
    return DatabaseUnavailable(f"unexpected error talking to {where}: {type(exc).__name__}")


@contextmanager
def database_errors(dsn: str) -> Iterator[None]:
    """Re-raise psycopg and OS errors of the block as typed errors (the original is dropped: it may quote
    the DSN)."""
    try:
        yield
    except HubSettingsError:
        raise
    except (psycopg.Error, OSError, PoolSaturated) as exc:
        raise map_error(exc, dsn) from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
