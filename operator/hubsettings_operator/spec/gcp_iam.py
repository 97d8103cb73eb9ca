"""The Hub's rule for `gcp_iam` rows it did not write itself (pkg/hub/gcp_iam_settings.go), as data. Pure.

A replica applies a change read from the table that makes either key less strict only when the latest
`hub_setting_update` rows in `mutation_audits` name it; the Hub's admin path writes those rows with the
admin's identity. Every other loosening change is refused by every replica (`hub_setting_apply_refused`),
which keeps its stricter values. The operator therefore refuses to write one (operator rule
`gcp-iam-loosening`); tightening changes need no audit row and are written as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hubsettings_operator.spec import facts, operator_rules

SECTION = "gcp_iam"


def _rule() -> Mapping[str, Any]:
    found: Mapping[str, Any] = facts.newest()["gcp_iam"]
    return found


def loosened(stored: Any, desired: Any) -> list[str]:
    """The keys `desired` makes less strict than the `stored` row (None: no row; the Hub then applies its
    deploy-time values, which may be the strict ones, so a loose value counts as loosening)."""
    old = stored if isinstance(stored, Mapping) else {}
    new = desired if isinstance(desired, Mapping) else {}
    strict: Mapping[str, str] = _rule()["strict"]
    loose: Mapping[str, str] = _rule()["loose"]
    out = []
    for key in strict:
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if after == loose[key] or (after in (None, "") and before == strict[key]):
            out.append(key)
    return out


def refusal(stored: Any, desired: Any) -> str | None:
    """The message refusing a write of `desired` over `stored`, or None when the Hub would apply it."""
    keys = loosened(stored, desired)
    if not keys:
        return None
    rule = _rule()
    held = (
        "the table holds no gcp_iam row, so each replica runs its deploy-time values"
        if stored is None
        else ("the table holds " + ", ".join(f"{k}={(stored or {}).get(k, '(unset)')!r}" for k in keys))
    )
    reason = operator_rules.message(
        "gcp-iam-loosening",
        f"spec.settings.gcp_iam makes {', '.join(keys)} less strict ({held}); nothing was written",
    )
    return (
        f"{reason}. Make this change as a Hub admin through {rule['admin_api']} (it records the "
        f"{rule['audit_mutation']} row the replicas require), then set the same values here, or set "
        "spec.policy.sections.gcp_iam.conflicts: Observe"
    )
