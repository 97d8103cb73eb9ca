"""Differential test: the operator against a model of the Hub's rules, for both Hub generations.

Documents come from the Hub's own section schemas (a hypothesis strategy built from each schema below, as
hypothesis-jsonschema would: its 0.23 release does not run with this hypothesis; derandomized, bounded) and from
deterministic mutations of them (unknown keys, each wrong type, bounds, empty strings, integers beyond Go's
int64, integral floats, Go duration edge cases). Each is judged by the model of the Hub's rules generated from
the facts (`spec/hub_model.py`: the schema as the registry compiles it, whose verdict is cross-checked here
with the `jsonschema` package, plus what Go's json.Unmarshal refuses) and by the operator's validation. The
operator must accept exactly what the model accepts, except refusals under a documented operator rule
(`spec/operator_rules.py`), which must say so.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubsettings_operator.spec import facts, operator_rules, versions
from hubsettings_operator.spec.hub_model import check_schema, check_section
from hubsettings_operator.spec.validation import validate_spec_uncached

GENERATIONS = facts.generations()
CASES = [(g["id"], s["name"]) for g in GENERATIONS for s in g["sections"]]
RULE_MARK = "this operator's rule '"
DURATION_EDGES = ["-1h", "+5m", ".5s", "1.s", "1\u00b5s", "1\u03bcs", "-0", "0", "", "1", "00", "1e3s", "5 m"]
INT_EDGES = [2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64, 0, -1]


# The newest Hub version of each generation: every field the generation has is known to it.
VERSION_OF = {GENERATIONS[0]["id"]: versions.NEXT_RELEASE, **{g["id"]: g["since"] for g in GENERATIONS[1:]}}


def _plain(node: Any) -> Any:
    """The schema without this project's `x-hub-check` annotations (checks jsonschema does not know)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if k != "x-hub-check"}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _generation(gen_id: str) -> dict[str, Any]:
    return next(g for g in GENERATIONS if g["id"] == gen_id)


def _section(gen_id: str, name: str) -> dict[str, Any]:
    return facts.section_facts(_generation(gen_id))[name]


def judge(gen_id: str, name: str, doc: Any) -> tuple[list[str], list[str]]:
    """(the model's problems, the operator's errors) for one section document."""
    fact = _section(gen_id, name)
    model = [str(p) for p in check_section(fact["schema"], doc, fact["go_types"], section=name)]
    raw = {
        "database": {"secretRef": {"name": "db", "key": "url"}},
        "hubVersion": VERSION_OF[gen_id],
        "settings": {name: doc},
    }
    _spec, errors = validate_spec_uncached(raw)
    return model, [str(e) for e in errors]


def assert_agree(gen_id: str, name: str, doc: Any) -> None:
    model, operator = judge(gen_id, name, doc)
    if model:
        assert operator, (
            f"{gen_id}/{name}: accepted although the Hub refuses or cannot decode it: {model} {doc!r}"
        )
        return
    unexplained = [e for e in operator if RULE_MARK not in e]
    assert not unexplained, (
        f"{gen_id}/{name}: refused without a documented operator rule: {unexplained} {doc!r}"
    )
    for error in operator:
        rule_id = error.split(RULE_MARK, 1)[1].split("'", 1)[0]
        assert rule_id in operator_rules.RULES_BY_ID, error


def _schema_agrees_with_jsonschema(schema: dict[str, Any], doc: Any) -> None:
    ours = not check_schema(_plain(schema), doc)
    theirs = jsonschema.Draft202012Validator(schema).is_valid(doc)
    assert ours == theirs, f"schema evaluator disagrees with jsonschema ({ours} vs {theirs}) on {doc!r}"


def _walk(
    schema: dict[str, Any], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every named property below the section (through map values as the key `k`)."""
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield (*path, key), sub
            yield from _walk(sub, (*path, key))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and not schema.get("properties"):
        yield from _walk(extra, (*path, "k"))


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
        node = nxt
    node[path[-1]] = value
    return out


def mutations(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Deterministic edge documents for one section schema."""
    yield {"unknown_key_zz": 1}
    for path, sub in _walk(schema):
        kind = sub.get("type")
        wrong: list[Any] = ["5", 5, True, None, [], {}, 1.0, 0.5]
        for value in wrong:
            yield _set({}, path, value)
        if kind == "integer":
            for value in INT_EDGES:
                yield _set({}, path, value)
            for bound in ("minimum", "maximum"):
                if bound in sub:
                    yield _set({}, path, sub[bound] + (-1 if bound == "minimum" else 1))
                    yield _set({}, path, sub[bound])
        if kind == "number":
            yield from (_set({}, path, v) for v in (0, 1, -0.5, 1.5, 2**70, "0.5", True))
        if kind == "string":
            yield from (_set({}, path, v) for v in DURATION_EDGES)
            yield _set({}, path, "x" * 5000)
        if kind == "object":
            yield _set({}, (*path, "unknown_key_zz"), 1)
        if kind == "array":
            yield _set({}, path, [{}])
            yield _set({}, path, [{"unknown_key_zz": 1, "type": "x"}])


@pytest.mark.parametrize(("gen_id", "name"), CASES, ids=[f"{g}-{n}" for g, n in CASES])
def test_mutations_are_judged_alike(gen_id: str, name: str) -> None:
    schema = _section(gen_id, name)["schema"]
    for doc in mutations(schema):
        _schema_agrees_with_jsonschema(schema, doc)
        assert_agree(gen_id, name, doc)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Documents valid for the JSON Schema keywords the Hub's section schemas use."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(b) for b in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**63)), schema.get("maximum", 2**63 - 1))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda t: len(t) <= schema.get("maxLength", 10**6)
            )
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 12), 12))
    if kind == "array":
        items = schema.get("items")
        return st.lists(from_schema(items) if isinstance(items, dict) else st.just({}), max_size=2)
    if kind == "object" or "properties" in schema:
        return _object(schema)
    return st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))


def _object(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    fixed = st.fixed_dictionaries(
        {k: from_schema(v) for k, v in props.items() if k in required},
        optional={k: from_schema(v) for k, v in props.items() if k not in required},
    )
    extra = schema.get("additionalProperties", True)
    patterns = schema.get("patternProperties") or {}
    names = (schema.get("propertyNames") or {}).get("pattern")
    keys = st.from_regex(names, fullmatch=True) if names else st.text(min_size=1, max_size=8)
    keys = keys.filter(lambda k: k not in props)
    if patterns:
        pattern, value = next(iter(patterns.items()))
        return st.dictionaries(st.from_regex(pattern, fullmatch=True), from_schema(value), max_size=2)
    if isinstance(extra, dict):
        more = st.dictionaries(keys, from_schema(extra), max_size=2)
        return st.tuples(fixed, more).map(lambda pair: {**pair[1], **pair[0]})
    return fixed


@pytest.mark.parametrize(("gen_id", "name"), CASES, ids=[f"{g}-{n}" for g, n in CASES])
def test_documents_generated_from_the_hubs_schema_are_judged_alike(gen_id: str, name: str) -> None:
    schema = _section(gen_id, name)["schema"]

    @settings(
        max_examples=12,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(from_schema(schema) | st.just({}))
    def check(doc: Any) -> None:
        _schema_agrees_with_jsonschema(schema, doc)
        assert_agree(gen_id, name, doc)

    check()
