"""Human-readable rendering of a plan, like `terraform plan`: `+` insert, `~` update, `-` delete, `!` not written,
`?` observed (a section under policy Observe differs from the spec: reported, never written).

Section documents are diffed field by field, so a one-field change in a 20-field section shows one line.
Values of secret-like keys are masked with their fingerprint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hubsettings_operator.redact import fingerprint
from hubsettings_operator.spec.catalog import is_secret_name
from hubsettings_operator.table.plan import Action, Change, Plan

SYMBOL = {
    Action.INSERT: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.ADOPT: "=",
    Action.CONFLICT: "!",
    Action.OWNED_BY_OTHER: "!",
    Action.OBSERVED: "?",
}


def _mask(value: Any) -> Any:
    """Replace the values of secret-like keys at any depth by their fingerprint."""
    if isinstance(value, Mapping):
        return {
            k: (
                f"<secret {fingerprint(json.dumps(v, sort_keys=True))}>"
                if is_secret_name(str(k))
                else _mask(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def show(key: str, value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    if is_secret_name(key.rsplit(".", 1)[-1]):
        return f"<secret {fingerprint(text)}>"
    text = json.dumps(_mask(value), sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= 200 else text[:197] + "..."


def _field_diff(prefix: str, old: Any, new: Any) -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        lines: list[str] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}"
            if key not in old:
                lines.append(f"    + {path} = {show(path, new[key])}")
            elif key not in new:
                lines.append(f"    - {path} (was {show(path, old[key])})")
            elif old[key] != new[key]:
                lines += _field_diff(path, old[key], new[key])
        return lines
    return [f"    ~ {prefix}: {show(prefix, old)} -> {show(prefix, new)}"]


def describe(change: Change) -> list[str]:
    sym = SYMBOL.get(change.action, " ")
    if change.action is Action.INSERT:
        return [f"{sym} {change.key} = {show(change.key, change.new)}"]
    if change.action is Action.DELETE:
        return [f"{sym} {change.key} (pruned; was {show(change.key, change.old)})"]
    if change.action is Action.UPDATE:
        head = f"{sym} {change.key}"
        if change.conflict:
            head += f"  (overwrites an out-of-band edit by {change.current_by or 'unknown'})"
        return [head, *_field_diff(change.key, change.old, change.new)]
    if change.action is Action.ADOPT:
        return [
            f"{sym} {change.key} (same value; takes ownership from {change.current_by or 'the Hub seed'})"
        ]
    if change.action is Action.CONFLICT:
        return [
            f"{sym} {change.key} (edited out of band by {change.current_by or 'unknown'}; left alone by policy "
            "Report)",
            *_field_diff(change.key, change.old, change.new),
        ]
    if change.action is Action.OWNED_BY_OTHER:
        return [
            f"{sym} {change.key} (owned by {change.current_by}; not written: remove it from one of the "
            "HubSettings)"
        ]
    if change.action is Action.OBSERVED:
        head = f"{sym} {change.key} (observed drift: policy Observe, not written)"
        if change.current_by is None and change.old is None:
            return [f"{head}; the table has no such row, the spec says {show(change.key, change.new)}"]
        return [head, *_field_diff(change.key, change.old, change.new)]
    return []


def render(plan: Plan) -> str:
    lines: list[str] = []
    for change in plan.changes:
        lines += describe(change)
    counts = {
        "to add": len(plan.by_action(Action.INSERT)),
        "to change": len(plan.by_action(Action.UPDATE)),
        "to delete": len(plan.by_action(Action.DELETE)),
        "to adopt": len(plan.by_action(Action.ADOPT)),
        "not written": len(plan.by_action(Action.CONFLICT, Action.OWNED_BY_OTHER)),
        "observed (differs, not written)": len(plan.observed_drift),
    }
    optional = ("to adopt", "observed (differs, not written)")
    summary = ", ".join(f"{n} {what}" for what, n in counts.items() if n or what not in optional)
    # Only a plan with nothing to write and nothing held back may say the table matches.
    if plan.is_noop and not (plan.conflicts or plan.owned_by_other or plan.observed_drift):
        return "No changes. The table matches the HubSettings.\n"
    return "\n".join(lines) + f"\n\nPlan: {summary}.\n"
