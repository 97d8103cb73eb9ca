"""The operator's typed errors. Their messages are safe to print: never a DSN, never a password.

Handlers map each class to a condition reason (`conditions.Reason`); the CLI maps them to exit codes.
"""

from __future__ import annotations

from hubsettings_operator.conditions import Reason
from hubsettings_operator.redact import scrub


class HubSettingsError(Exception):
    """Base class. `reason` is the condition reason; `transient` says whether retrying can help."""

    reason: Reason = Reason.DATABASE_UNAVAILABLE
    transient: bool = True

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class DatabaseUnavailable(HubSettingsError):
    """Cannot connect, connection lost, or timed out."""

    reason = Reason.DATABASE_UNAVAILABLE


class WaitingForConnection(HubSettingsError):
    """The operator's own connection cap (`--max-db-connections`) stayed full for the whole bounded wait: the
    object is queued behind others, its database is not at fault. Retried soon, without backoff."""

    reason = Reason.WAITING_FOR_CONNECTION


class PermissionDenied(HubSettingsError):
    """The database role lacks a privilege (SELECT/INSERT/UPDATE/DELETE on the table, CREATE on the schema)."""

    reason = Reason.PERMISSION_DENIED


class SchemaMismatch(HubSettingsError):
    """The table is missing, its columns match no supported profile, or it lacks the row key's unique index.
    Not transient: retrying the same apply cannot help until somebody fixes the table (the message says how)."""

    reason = Reason.SCHEMA_MISMATCH
    transient = False


class ConcurrentWrite(HubSettingsError):
    """Somebody else wrote a row between our read and our write (the revision check failed); re-plan."""

    reason = Reason.CONCURRENT_WRITE


class SecretNotFound(HubSettingsError):
    """The referenced Secret (or key) does not exist or may not be read."""

    reason = Reason.SECRET_NOT_FOUND


class HubRuleRefused(HubSettingsError):
    """A change the Hub's replicas would refuse to apply (e.g. loosening gcp_iam without the Hub's audit row):
    nothing is written, and retrying cannot help until the spec or the Hub changes."""

    reason = Reason.INVALID_SPEC
    transient = False
