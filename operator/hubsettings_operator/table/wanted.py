"""What a spec wants in the table, canonicalised once: the rows, their canonical JSON and their digests.

A no-op resync used to canonicalise every wanted document again (and the stored ones, see `store.rows_from`)
to find that nothing changed. `Wanted` holds those texts once; `WantedCache` keeps one `Wanted` per spec
instance and profile, so an unchanged spec (`validate_spec` hands the same read-only instance for equal specs)
is canonicalised only when it first appears. Only the caller's promise that a cached spec is never mutated
makes identity a valid key: the reconciler's specs come from `validate_spec`'s cache, which requires it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table.plan import JSONValue, canonical_digest, canonical_json, settings_hash_of


@dataclass(frozen=True)
class Wanted:
    """Rows to hold, keyed by row key, with `canonical_json` and `canonical_digest` of each value."""

    rows: Mapping[str, JSONValue]
    canonical: Mapping[str, str]
    digests: Mapping[str, str]
    # Layout notes per profile (pure in the rows: computed once per Wanted).
    _notes: dict[Profile, list[str]] = field(default_factory=dict, compare=False, repr=False)
    _hashes: dict[frozenset[str], str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, rows: Mapping[str, JSONValue]) -> Wanted:
        canonical = {key: canonical_json(value) for key, value in rows.items()}
        return cls(dict(rows), canonical, {key: canonical_digest(text) for key, text in canonical.items()})

    def notes(self, profile: Profile, compute: Callable[[Mapping[str, JSONValue]], list[str]]) -> list[str]:
        found = self._notes.get(profile)
        if found is None:
            found = self._notes[profile] = compute(self.rows)
        return list(found)

    def settings_hash(self, keys: Iterable[str]) -> str:
        """`plan.settings_hash` of the rows under `keys`, from the texts already computed."""
        wanted = frozenset(keys)
        found = self._hashes.get(wanted)
        if found is None:
            found = settings_hash_of({k: self.canonical[k] for k in wanted if k in self.canonical})
            if len(self._hashes) < 8:  # a handful of owned-key sets per spec (conflicts come and go)
                self._hashes[wanted] = found
        return found


T = TypeVar("T")

# Specs remembered at once (one per HubSettings, plus the previous generation of those that changed).
WANTED_CACHE_ENTRIES = 4096


class WantedCache:
    """`Wanted` per (spec instance, profile), least recently used dropped past `WANTED_CACHE_ENTRIES`.

    The spec is held by the entry, so its `id` cannot be reused by another object while the entry lives.
    Callers must never mutate a spec after handing it here (validate_spec's instances are read-only)."""

    def __init__(self, entries: int = WANTED_CACHE_ENTRIES) -> None:
        self._entries = entries
        self._cache: OrderedDict[tuple[int, Profile], tuple[Any, Wanted]] = OrderedDict()
        self._modes: OrderedDict[tuple[int, Any], tuple[Any, Any]] = OrderedDict()

    def get(self, spec: Any, profile: Profile, rows_for: Callable[[], Mapping[str, JSONValue]]) -> Wanted:
        key = (id(spec), profile)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is spec:
            self._cache.move_to_end(key)
            return hit[1]
        wanted = Wanted.of(rows_for())
        self._cache[key] = (spec, wanted)
        while len(self._cache) > self._entries:
            self._cache.popitem(last=False)
        return wanted

    def modes(self, spec: Any, policy: Any, make: Callable[[], T]) -> T:
        """`make()` (the spec's per-section conflict modes under `policy`) once per (spec instance, policy):
        the same function for an unchanged spec, so the store sees an unchanged intent."""
        key = (id(spec), policy)
        hit = self._modes.get(key)
        if hit is not None and hit[0] is spec:
            self._modes.move_to_end(key)
            return cast(T, hit[1])
        made = make()
        self._modes[key] = (spec, made)
        while len(self._modes) > self._entries:
            self._modes.popitem(last=False)
        return made
