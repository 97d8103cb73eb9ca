"""Kubernetes label selectors, as plain data: parse the string syntax, match labels, print the API query.

Shared by the operator (its pod watch is filtered by the API server with `to_query`, and each HubSettings'
`spec.bootstrap.podSelector` is matched against the watched pods) and the CLI. Imports nothing of the package.

Grammar (as `kubectl -l` and the API's `labelSelector`): requirements joined by `,`, each one of `k=v`,
`k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not exist).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
# A qualified label key (optional DNS prefix + name) and a label value, as the API server validates them.
_KEY = r"(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^()]*)\)\s*$")
_EQ = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


class SelectorError(ValueError):
    """A selector string that the API server would refuse."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()
    # Written as `k=v` / `k!=v` (printed back that way); set syntax otherwise. Not part of the meaning.
    equality: bool = field(default=False, compare=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        raise SelectorError(f"unknown label selector operator {self.operator!r}")

    def query(self) -> str:
        values = ",".join(sorted(self.values))
        single = self.equality and len(self.values) == 1
        if self.operator == "In":
            return f"{self.key}={values}" if single else f"{self.key} in ({values})"
        if self.operator == "NotIn":
            return f"{self.key}!={values}" if single else f"{self.key} notin ({values})"
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        raise SelectorError(f"unknown label selector operator {self.operator!r}")


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


def parse(text: str) -> list[Requirement]:
    """A selector string -> requirements. Empty string: no requirement (every object)."""
    out: list[Requirement] = []
    for part in _split(text):
        if m := _SET.match(part):
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            if not values or not all(re.fullmatch(_VALUE, v) for v in values):
                raise SelectorError(
                    f"{part!r}: a set needs one or more label values, e.g. 'app in (hub,api)'"
                )
            out.append(Requirement(m.group(1), "In" if m.group(2) == "in" else "NotIn", values))
        elif m := _EQ.match(part):
            out.append(
                Requirement(m.group(1), "NotIn" if m.group(2) == "!=" else "In", (m.group(3),), equality=True)
            )
        elif m := _EXISTS.match(part):
            out.append(Requirement(m.group(2), "DoesNotExist" if m.group(1) else "Exists"))
        else:
            raise SelectorError(
                f"{part!r} is not a label selector requirement (k=v, k!=v, k in (a,b), k notin (a,b), k, !k)"
            )
    return out


def from_label_selector(
    match_labels: Mapping[str, str], match_expressions: Iterable[Any]
) -> list[Requirement]:
    """A metav1.LabelSelector (matchLabels, matchExpressions as mappings or objects) -> requirements."""
    reqs = [Requirement(k, "In", (v,), equality=True) for k, v in sorted(match_labels.items())]
    for expr in match_expressions:
        get = expr.get if isinstance(expr, Mapping) else lambda name, e=expr: getattr(e, name, None)
        operator = str(get("operator"))
        if operator not in OPERATORS:  # never silently widen a selector
            raise SelectorError(f"unknown label selector operator {operator!r}")
        reqs.append(Requirement(str(get("key")), operator, tuple(sorted(get("values") or ()))))
    return reqs


def matches(requirements: Iterable[Requirement], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)


def to_query(requirements: Iterable[Requirement]) -> str:
    """Requirements as the API server's `labelSelector` query string (deterministic)."""
    return ",".join(r.query() for r in requirements)


def normalize(text: str) -> str:
    """A selector string in canonical form (raises SelectorError when invalid)."""
    return to_query(parse(text))


def _implies_one(have: Iterable[Requirement], need: Requirement) -> bool:
    for r in have:
        if r.key != need.key:
            continue
        if need.operator == "In" and r.operator == "In" and set(r.values) <= set(need.values):
            return True
        if need.operator == "NotIn" and (
            (r.operator == "In" and not set(r.values) & set(need.values))
            or (r.operator == "NotIn" and set(r.values) >= set(need.values))
            or r.operator == "DoesNotExist"
        ):
            return True
        if need.operator == "Exists" and r.operator in ("In", "Exists"):
            return True
        if need.operator == "DoesNotExist" and r.operator == "DoesNotExist":
            return True
    return False


def implies(narrow: Iterable[Requirement], wide: Iterable[Requirement]) -> bool:
    """Whether every object `narrow` selects is also selected by `wide` (decided per requirement, so a False
    can be conservative: then `narrow` may select objects outside `wide`)."""
    have = list(narrow)
    return all(_implies_one(have, need) for need in wide)
