"""What the reconcile does with the status of the other two checks: drop a check's report and conditions once its
spec section is gone (no drift check without spec.bootstrap, no convergence check without spec.convergence).

Each check's verdict module says what it owns (`SPEC_FIELD`, `STATUS_FIELD`, `CONDITIONS`); a new condition of
an existing check is listed there, and nothing here changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubsettings_operator.status import convergence, drift
from hubsettings_operator.status.rules import StatusUpdate

CHECKS = (drift, convergence)


def drop_disabled_checks(
    spec: Mapping[str, Any], old_status: Mapping[str, Any], update: StatusUpdate
) -> None:
    """Without its spec section a check does not run: remove what an earlier spec left of it."""
    if update.verdict is None:
        return
    for check in CHECKS:
        if spec.get(check.SPEC_FIELD):
            continue
        update.verdict = update.verdict.also_remove(*check.CONDITIONS)
        if old_status.get(check.STATUS_FIELD) is not None:
            update.fields[check.STATUS_FIELD] = None
