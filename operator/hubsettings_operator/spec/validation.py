"""Validation with guidance: every error names a field path, says why, and says what to do.

The pydantic models reject wrong types and unknown fields; this module adds what a model alone cannot say
well: that `log_level` is a bootstrap setting and where it goes instead, that secrets stay in the secret
backend, that `admin_emails` belongs to section `access`, size and nesting limits, and the key grammar of
`extraSettings`. Pure: no I/O. Used by the CLI (`validate`, `plan`, `apply`) and by the operator.

Over 400 lines: one guidance message per kind of mistake; splitting them would scatter the wording users
read.
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from hubsettings_operator.spec import catalog, operator_rules, section_check, versions
from hubsettings_operator.spec.live_schema import LiveSchemas
from hubsettings_operator.spec.models import (
    API_VERSION,
    EXTRA_KEY_PATTERN,
    KIND,
    MAX_EXTRA_KEYS,
    MAX_JSON_DEPTH,
    MAX_VALUE_BYTES,
    HubSettings,
    HubSettingsSpec,
)
from hubsettings_operator.spec.sections import MAP_SECTIONS, SECTION_MODELS
from hubsettings_operator.spec.size import size_problem


@dataclass(frozen=True)
class FieldError:
    """One problem: where (a field path such as `spec.settings.access.admin_emails[0]`), why, what to do."""

    path: str
    reason: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + (f". {self.hint}" if self.hint else "")

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "hint": self.hint}


@dataclass
class Report:
    """The outcome of validating one manifest."""

    source: str
    name: str | None = None
    namespace: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    resource: HubSettings | None = None
    # spec.extraSettings keys: written as given, checked only for size and grammar (status.unvalidatedSections).
    unvalidated_sections: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.resource is not None

    def summary(self, limit: int = 5) -> str:
        """All errors on one line (for a condition message), the first `limit` in full."""
        shown = "; ".join(str(e) for e in self.errors[:limit])
        more = len(self.errors) - limit
        return shown + (f"; and {more} more" if more > 0 else "")


def _loc_to_path(prefix: str, loc: Iterable[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


_SCALARS = (str, int, float, bool, type(None))


def _children(value: Any) -> Iterable[Any] | None:
    """The items of a JSON container (plain dict and list first: ABC checks are slow), else None."""
    kind = type(value)
    if kind is dict:
        return value.values()  # type: ignore[no-any-return]
    if kind is list:
        return value  # type: ignore[no-any-return]
    if kind in _SCALARS:
        return None
    if isinstance(value, Mapping):
        return value.values()
    return value if isinstance(value, list) else None


def _depth(value: Any, level: int = 0) -> int:
    """Nesting depth; recurses into containers only (scalars are most of a spec)."""
    children = _children(value)
    if children is None:
        return level
    best = level + 1
    for child in children:
        if type(child) not in _SCALARS:
            best = max(best, _depth(child, level + 1))
    return best


def _json_size(value: Any) -> int:
    # surrogatepass: a lone surrogate must be reported as such (below), not crash the size check.
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        return MAX_VALUE_BYTES + 1  # circular or absurdly deep: the depth check reports it
    return len(text.encode("utf-8", "surrogatepass"))


def _suspect_text(value: Any) -> bool:
    """Cheap pre-check: may `value` hold a NUL or a lone surrogate anywhere (keys included)? False positives
    only cost the exact walk."""
    if value is None or isinstance(value, bool | int | float):
        return False
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
        text.encode("utf-8")
    except (UnicodeEncodeError, ValueError, TypeError, RecursionError):
        return True
    return "\\u0000" in text


def _lone_surrogate(text: str) -> bool:
    """True for text that is not valid Unicode (e.g. JSON "\\ud800"): PostgreSQL cannot store it."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def _misplaced(path: str, name: str, *, in_section: str | None) -> FieldError:
    """Guidance for a key that is not a field of where it was written."""
    setting = catalog.find_misplaced(name)
    if catalog.is_secret_name(name) or (setting is not None and setting.secret):
        guidance = catalog.SECRET_GUIDANCE
        return FieldError(path, f"{name!r} is a secret", guidance[:1].upper() + guidance[1:])
    if setting is not None and setting.layer == 0:
        reason, _, hint = catalog.layer0_guidance(repr(name), setting).partition(": ")
        return FieldError(path, reason, hint[:1].upper() + hint[1:])
    if setting is not None and setting.section is not None and setting.section != in_section:
        return FieldError(
            path,
            f"{name!r} is not a field of {'section ' + repr(in_section) if in_section else 'spec.settings'}",
            f"It belongs to section {setting.section!r}: {catalog.settings_path(setting)}",
        )
    if in_section is None:
        close = difflib.get_close_matches(name, list(SECTION_MODELS), n=1)
        did = f"Did you mean {close[0]!r}? " if close else ""
        return FieldError(
            path,
            f"unknown section {name!r}",
            f"{did}The Hub's sections are: {', '.join(SECTION_MODELS)}. For rows the catalog does not know "
            "yet, use spec.extraSettings",
        )
    fields = list(SECTION_MODELS[in_section].model_fields)
    close = difflib.get_close_matches(name, fields, n=1)
    did = f"Did you mean {close[0]!r}? " if close else ""
    return FieldError(
        path,
        f"unknown field {name!r} in section {in_section!r} (the Hub rejects unknown fields)",
        f"{did}Fields of {in_section}: {', '.join(fields)}",
    )


_FIELDS = {name: frozenset(model.model_fields) for name, model in SECTION_MODELS.items()}


def _check_settings(raw: Any) -> tuple[list[FieldError], set[tuple[str, ...]]]:
    """Guidance errors for spec.settings, and the pydantic locations they replace."""
    errors: list[FieldError] = []
    handled: set[tuple[str, ...]] = set()
    if not isinstance(raw, Mapping):
        return errors, handled
    # Every section is at most as large as all of them: measure each one only when all together are too big.
    sizes_needed = _json_size(raw) > MAX_VALUE_BYTES
    for section, doc in raw.items():
        spath = f"spec.settings.{section}"
        if section not in SECTION_MODELS:
            spath = _loc_to_path("spec.settings", [str(section)])
            errors.append(_misplaced(spath, str(section), in_section=None))
            handled.add(("settings", str(section)))
            continue
        if not isinstance(doc, Mapping):
            continue
        fields = _FIELDS[section]
        for name in doc:
            if section not in MAP_SECTIONS and name not in fields:
                errors.append(_misplaced(_loc_to_path(spath, [str(name)]), str(name), in_section=section))
                handled.add(("settings", section, str(name)))
        if _depth(doc) > MAX_JSON_DEPTH:
            errors.append(
                FieldError(
                    spath,
                    operator_rules.message("storage", f"nested deeper than {MAX_JSON_DEPTH} levels"),
                    "Flatten the value",
                )
            )
        elif sizes_needed and _json_size(doc) > MAX_VALUE_BYTES:
            errors.append(
                FieldError(
                    spath,
                    operator_rules.message(
                        "storage", f"section document larger than {MAX_VALUE_BYTES} bytes"
                    ),
                    "Shorten the values",
                )
            )
    return errors, handled


def _check_extra(raw: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(raw, Mapping):
        return errors
    if len(raw) > MAX_EXTRA_KEYS:
        errors.append(
            FieldError("spec.extraSettings", f"{len(raw)} keys, more than the limit of {MAX_EXTRA_KEYS}")
        )
    for key, value in raw.items():
        path = _loc_to_path("spec.extraSettings", [str(key)])
        skey = str(key)
        if skey.startswith("_"):
            errors.append(
                FieldError(
                    path,
                    "keys starting with '_' are the Hub's own rows (such as _meta)",
                    "Choose another key",
                )
            )
            continue
        if not re.fullmatch(EXTRA_KEY_PATTERN, skey):
            errors.append(
                FieldError(
                    path,
                    "key does not match the key grammar (lower-case words of [a-z0-9_] separated by '.', "
                    "starting with a letter, at most 8 parts of 63 characters)",
                )
            )
            continue
        setting = catalog.find_misplaced(skey)
        if skey in SECTION_MODELS:
            errors.append(
                FieldError(
                    path,
                    f"{skey!r} is a known section: extraSettings is only for sections the catalog does not know "
                    "(a newer Hub), and writes them unchecked",
                    f"Use spec.settings.{skey}, where it is checked as the Hub checks it on its write path",
                )
            )
            continue
        if (setting is not None and setting.layer == 0) or catalog.is_secret_name(skey.rsplit(".", 1)[-1]):
            errors.append(_misplaced(path, skey, in_section=None))
        elif setting is not None and setting.section is not None and catalog.is_known_row_key(skey):
            errors.append(
                FieldError(
                    path,
                    f"{skey!r} is a known setting",
                    f"Write it under {catalog.settings_path(setting)}, where it is type-checked",
                )
            )
        elif "." not in skey and not isinstance(value, Mapping):
            # An undotted key is a section of the shipped Hub's table: its document must be an object.
            errors.append(
                FieldError(
                    path,
                    f"a section document must be a JSON object, got {_json_kind(value)}",
                    "Write the section's fields as a mapping: the Hub marks a section that is not an object "
                    "malformed and falls back to its defaults",
                )
            )
        for nested_path, nested_key, is_key in _walk_text(value, path, MAX_JSON_DEPTH):
            if is_key and catalog.is_secret_name(nested_key):
                errors.append(_misplaced(nested_path, nested_key, in_section=None))
        if _depth(value) > MAX_JSON_DEPTH:
            errors.append(FieldError(path, f"value nested deeper than {MAX_JSON_DEPTH} levels"))
        elif _json_size(value) > MAX_VALUE_BYTES:
            errors.append(FieldError(path, f"value larger than {MAX_VALUE_BYTES} bytes (JSON-encoded)"))
        elif any("\x00" in text for _path, text, _key in _walk_text(value, path)):
            errors.append(FieldError(path, "value contains a NUL character, which PostgreSQL cannot store"))
    return errors


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else type(value).__name__


def unvalidated_sections(spec: HubSettingsSpec, live: LiveSchemas | None = None) -> list[str]:
    """The rows a spec writes without checking them against a section schema: its extraSettings keys, but for
    those a live Hub's schema covers (for `status.unvalidatedSections` and `plan`). Pure."""
    known = live.schemas if live is not None else {}
    return sorted(k for k in spec.extraSettings if k not in known)


def _check_bootstrap(raw: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(raw, Mapping) or not isinstance(raw.get("expected"), Mapping):
        return errors
    for key in raw["expected"]:
        path = _loc_to_path("spec.bootstrap.expected", [str(key)])
        setting = catalog.by_key(str(key))
        if setting is None:
            close = difflib.get_close_matches(str(key), catalog.layer0_keys(), n=1)
            did = f"Did you mean {close[0]!r}? " if close else ""
            errors.append(
                FieldError(
                    path,
                    f"unknown bootstrap key {key!r}",
                    f"{did}Keys are koanf paths of Layer 0 settings as in the Hub's settings.yaml (see "
                    "docs/crd-reference.md)",
                )
            )
        elif setting.layer == 1:
            errors.append(
                FieldError(
                    path,
                    f"{key!r} is an operational (Layer 1) setting",
                    f"Set it under {catalog.settings_path(setting)}; bootstrap.expected checks "
                    "Layer 0 settings only",
                )
            )
    return errors


def _walk_text(
    value: Any, path: str, max_depth: int | None = None, level: int = 0
) -> Iterable[tuple[str, str, bool]]:
    """(path, text, is_key) for every string inside a value, mapping keys included (keys are stored too,
    and secrets hide in nested keys). `max_depth` stops the descent below that many levels."""
    if max_depth is not None and level > max_depth:
        return
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, Mapping):
        for k, v in value.items():
            sub = _loc_to_path(path, [str(k)])
            yield sub, str(k), True
            yield from _walk_text(v, sub, max_depth, level + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_text(v, f"{path}[{i}]", max_depth, level + 1)


# validate_spec results by the canonical JSON of the raw spec: a no-op reconcile validates the same spec again
# and again, and validation is a pure function of it (and of the catalog, fixed at import).
_CACHE_SIZE = 256
_cache: OrderedDict[str, tuple[HubSettingsSpec | None, tuple[FieldError, ...]]] = OrderedDict()
_cache_lock = threading.Lock()


def _cache_key(raw: Any) -> str | None:
    """The canonical JSON text of `raw`, or None when it is not plain JSON data (e.g. a YAML date): such a
    spec is validated every time rather than risk two different inputs sharing a key."""
    try:
        return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None


def validate_spec(
    raw: Any, *, hub_version: str | None = None, live: LiveSchemas | None = None
) -> tuple[HubSettingsSpec | None, list[FieldError]]:
    """Validate a raw `spec` (parsed YAML/JSON). Never raises: every problem is a FieldError.

    `hub_version` is the running Hub's version when `spec.hubVersion` is unset (the oldest replica's, see
    versions.effective_hub_version); `live` the section schemas that Hub serves (spec/live_schema.py): sections
    are then checked against them, and extraSettings rows that Hub knows as sections are checked too.

    Results are cached by the spec's canonical JSON (and the Hub it is checked against): equal specs get the
    same HubSettingsSpec instance, which callers must treat as read-only."""
    key = _cache_key(raw)
    if key is not None and (hub_version or live is not None):
        key = f"{hub_version}|{live.cache_key() if live else ''}|{key}"
    if key is not None:
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit[0], list(hit[1])
    spec, errors = validate_spec_uncached(raw, hub_version=hub_version, live=live)
    if key is not None:
        with _cache_lock:
            _cache[key] = (spec, tuple(errors))
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return spec, errors


def validate_spec_uncached(
    raw: Any, *, hub_version: str | None = None, live: LiveSchemas | None = None
) -> tuple[HubSettingsSpec | None, list[FieldError]]:
    """validate_spec without the cache (benchmarks, and callers that need a fresh model)."""
    if not isinstance(raw, Mapping):
        return None, [FieldError("spec", "must be an object")]
    errors: list[FieldError] = []
    declared = raw.get("hubVersion") if isinstance(raw.get("hubVersion"), str) else None
    try:
        view = section_check.HubView.for_version(declared or hub_version, live)
    except ValueError:  # an unparsable spec.hubVersion: the model reports it below
        view = section_check.HubView.for_version(None, live)
    findings: list[section_check.Finding] = []
    try:
        # First: nothing else matters if it cannot be stored. Inside the try: measuring it serialises it, which
        # recurses like the checks below.
        if (too_large := size_problem(raw)) is not None:
            return None, [FieldError("spec", *too_large)]
        settings_errors, handled = _check_settings(raw.get("settings"))
        errors += settings_errors
        findings = [
            f
            for f in _hub_findings(raw.get("settings"), view)
            if not any(
                ("settings", f.section, *map(str, f.loc[:k])) in handled for k in range(len(f.loc) + 1)
            )
        ]
        errors += [_finding_error(f) for f in findings]
        errors += _check_extra_live(raw.get("extraSettings"), view)
        errors += _check_extra(raw.get("extraSettings"))
        errors += _check_bootstrap(raw.get("bootstrap"))
        # One serialisation finds the rare bad text; field paths are only built when there is one.
        suspect = {where: _suspect_text(raw.get(where)) for where in ("settings", "extraSettings")}
        if suspect["settings"]:
            for path, text, _key in _walk_text(raw.get("settings"), "spec.settings"):
                if "\x00" in text:
                    errors.append(
                        FieldError(
                            path,
                            operator_rules.message(
                                "storage", "contains a NUL character, which PostgreSQL cannot store"
                            ),
                        )
                    )
        for where in ("settings", "extraSettings"):
            if not suspect[where]:
                continue
            for path, text, _key in _walk_text(raw.get(where), f"spec.{where}"):
                if _lone_surrogate(text):
                    errors.append(
                        FieldError(
                            path,
                            operator_rules.message(
                                "storage",
                                "contains a lone surrogate (not valid Unicode), which cannot be stored",
                            ),
                        )
                    )
    except RecursionError:  # far deeper than MAX_JSON_DEPTH: the checks above recurse
        return None, [
            FieldError("spec", f"nested far deeper than {MAX_JSON_DEPTH} levels", "Flatten the value")
        ]
    spec: HubSettingsSpec | None = None
    try:
        spec = HubSettingsSpec.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(str(p) for p in err["loc"])
            if any(loc[: len(h)] == h for h in handled):
                continue
            reason = _pydantic_reason(err)
            raw_loc = tuple(err["loc"])
            if len(raw_loc) >= 2 and raw_loc[0] == "settings" and isinstance(raw_loc[1], str):
                section, inner = raw_loc[1], raw_loc[2:]
                mine = [f for f in findings if f.section == section]
                if section_check.covered(inner, mine) or (err.get("type") == "go_int" and mine):
                    continue  # the Hub's own rule already reports it
                reason = section_check.explain_model_error(section, inner, str(err.get("type", "")), reason)
            errors.append(FieldError(_loc_to_path("spec", err["loc"]), reason, _hint(err)))
    except (ValueError, TypeError, RecursionError) as exc:
        errors.append(FieldError("spec", f"cannot be read: {type(exc).__name__}"))
    if spec is not None:
        errors += _check_policy_sections(spec)
        governing = spec.hubVersion or hub_version
        source = "spec.hubVersion is" if spec.hubVersion else "the oldest running replica runs"
        if governing:
            for need in versions.unknown_to_hub(spec.settings, governing):
                errors.append(
                    FieldError(
                        need.path,
                        f"needs Hub >= {need.version}, and {source} {governing}: that Hub would "
                        "refuse it on its write path and drop it on its read path",
                        "Remove it, or upgrade the Hub first (and then raise spec.hubVersion)"
                        if spec.hubVersion
                        else f"Upgrade every replica to Hub >= {need.version} (the oldest governs), or drop "
                        "the field for now",
                    )
                )
    if errors:
        return None, errors
    return spec, []


def _hub_findings(raw: Any, view: section_check.HubView) -> list[section_check.Finding]:
    """The Hub's own rules and the not-applied rule over each known section of spec.settings."""
    out: list[section_check.Finding] = []
    if not isinstance(raw, Mapping):
        return out
    for section, doc in raw.items():
        if section in SECTION_MODELS and isinstance(doc, Mapping):
            out += section_check.hub_findings(str(section), doc, view)
            out += section_check.not_applied_findings(str(section), doc)
    return out


def _finding_error(finding: section_check.Finding) -> FieldError:
    return FieldError(
        _loc_to_path(f"spec.settings.{finding.section}", finding.loc), finding.reason, finding.hint
    )


def _check_extra_live(raw: Any, view: section_check.HubView) -> list[FieldError]:
    """extraSettings rows that the running Hub knows as sections: checked against its schema."""
    if not isinstance(raw, Mapping) or view.live is None:
        return []
    out: list[FieldError] = []
    for key, doc in raw.items():
        if key in view.live.schemas and key not in SECTION_MODELS:
            for finding in section_check.hub_findings(str(key), doc, view):
                out.append(
                    FieldError(
                        _loc_to_path(f"spec.extraSettings[{json.dumps(key)}]", finding.loc), finding.reason
                    )
                )
    return out


def _check_policy_sections(spec: HubSettingsSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    for name in spec.policy.sections:
        if name not in SECTION_MODELS and name not in spec.extraSettings:
            close = difflib.get_close_matches(name, [*SECTION_MODELS, *spec.extraSettings], n=1)
            did = f"Did you mean {close[0]!r}? " if close else ""
            errors.append(
                FieldError(
                    _loc_to_path("spec.policy.sections", [name]),
                    f"{name!r} is neither a section of the Hub nor a key of spec.extraSettings",
                    f"{did}Name a section: {', '.join(SECTION_MODELS)}",
                )
            )
    return errors


def _pydantic_reason(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    kind = str(err.get("type", ""))
    if kind == "extra_forbidden":
        return "unknown field (not part of the HubSettings schema)"
    if kind == "missing":
        return "required field is missing"
    got = err.get("input")
    if kind.endswith("_type") and got is not None and not isinstance(got, Mapping | list):
        return f"{msg} (got {type(got).__name__} {json.dumps(got, default=str)[:60]})"
    return msg


_HINTS = {
    "extra_forbidden": "Remove it or fix its name: the Hub's schema refuses unknown fields, and a row the operator "
    "wrote with it would lose it silently on the Hub's read path",
    "bool_type": "Write true or false, unquoted: a wrong type makes the Hub mark the whole section malformed and "
    "fall back to its defaults",
    "int_type": "Write a whole number, unquoted: a wrong type makes the Hub mark the whole section malformed",
    "int_from_float": "Write a whole number",
    "float_type": "Write a number, unquoted",
    "string_type": "Quote the value: a wrong type makes the Hub mark the whole section malformed",
    "list_type": "Write a list",
    "dict_type": "Write a mapping",
    "model_type": "Write a mapping of the fields listed in docs/crd-reference.md",
    "literal_error": "Use one of the listed values",
    "enum": "Use one of the listed values",
    "string_pattern_mismatch": "Fix the value's format (docs/crd-reference.md gives each field's pattern)",
    "greater_than_equal": "Use a value within the Hub's bounds",
    "less_than_equal": "Use a value within the Hub's bounds",
    "greater_than": "Use a value within the Hub's bounds",
    "less_than": "Use a value within the Hub's bounds",
    "too_long": "Shorten it",
    "too_short": "Add the missing items",
    "string_too_long": "Shorten it",
    "string_too_short": "Give a value",
    "missing": "Add it: the Hub's schema requires it",
}


def _hint(err: Mapping[str, Any]) -> str:
    """What to do about a pydantic error, by its kind."""
    return _HINTS.get(str(err.get("type", "")), "")


def validate_object(
    obj: Any, source: str = "<input>", *, hub_version: str | None = None, live: LiveSchemas | None = None
) -> Report:
    """Validate a whole manifest (apiVersion, kind, metadata, spec); `hub_version` and `live` as for
    validate_spec."""
    report = Report(source=source)
    if not isinstance(obj, Mapping):
        report.errors.append(FieldError("(document)", "a HubSettings manifest must be a YAML/JSON object"))
        return report
    raw_meta = obj.get("metadata")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    report.name = str(meta.get("name")) if meta.get("name") is not None else None
    report.namespace = str(meta.get("namespace")) if meta.get("namespace") is not None else None
    if obj.get("apiVersion") != API_VERSION:
        report.errors.append(
            FieldError("apiVersion", f"must be {API_VERSION!r}, got {obj.get('apiVersion')!r}")
        )
    if obj.get("kind") != KIND:
        report.errors.append(FieldError("kind", f"must be {KIND!r}, got {obj.get('kind')!r}"))
    if not report.name:
        report.errors.append(FieldError("metadata.name", "required field is missing"))
    spec, errors = validate_spec(obj.get("spec"), hub_version=hub_version, live=live)
    report.errors += errors
    if not report.errors and spec is not None:
        report.unvalidated_sections = unvalidated_sections(spec, live)
        try:
            # The spec is validated already: the envelope takes the model as it is (not revalidated).
            report.resource = HubSettings.model_validate({**obj, "spec": spec})
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                report.errors.append(
                    FieldError(_loc_to_path("", err["loc"]).lstrip("."), _pydantic_reason(err))
                )
    return report
