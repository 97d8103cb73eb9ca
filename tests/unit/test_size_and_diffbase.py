"""The largest accepted spec fits etcd's request limit with the rest of the object (spec/size.py), and kopf's diff
base stays compact for large specs (runtime/diffbase.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kopf

from hubsettings_operator.runtime.diffbase import DIGEST_PREFIX, CompactStatusDiffBaseStorage
from hubsettings_operator.spec.size import ETCD_REQUEST_LIMIT, MAX_SPEC_BYTES, stored_spec_bytes
from hubsettings_operator.spec.validation import validate_spec
from tests.support.bigspec import spec_of

FIELD = "status.lastHandledConfiguration"


def test_the_limit_leaves_room_for_managed_fields_and_status() -> None:
    # managedFields can be as large as the spec (one entry per field); status and metadata need the rest.
    assert 2 * MAX_SPEC_BYTES + 128 * 1024 < ETCD_REQUEST_LIMIT


def test_a_spec_at_the_limit_is_accepted_one_byte_more_is_not() -> None:
    at_limit = spec_of(MAX_SPEC_BYTES)
    assert stored_spec_bytes(at_limit) == MAX_SPEC_BYTES
    spec, errors = validate_spec(at_limit)
    assert spec is not None, errors
    over = spec_of(MAX_SPEC_BYTES + 1)
    spec, errors = validate_spec(over)
    assert spec is None and len(errors) == 1 and errors[0].path == "spec"
    assert f"{MAX_SPEC_BYTES + 1} bytes" in errors[0].reason and "etcd" in errors[0].reason


def test_go_html_escapes_count() -> None:
    # The API server's JSON (Go) writes < > & as \u003c etc.: 6 bytes each.
    assert stored_spec_bytes({"a": "<&>"}) == len('{"a":""}') + 18


def _body(spec: dict[str, Any], stored: str | None = None) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": "scion.dev/v1alpha1",
        "kind": "HubSettings",
        "metadata": {},
        "spec": spec,
    }
    if stored is not None:
        raw["status"] = {"lastHandledConfiguration": stored}
    return kopf.Body(raw)


def test_diff_base_is_a_digest_for_a_large_spec_and_whole_for_a_small_one() -> None:
    storage = CompactStatusDiffBaseStorage(field=FIELD, ignored_fields=["metadata"])
    small = {"settings": {"maintenance": {"maintenance_message": "hi"}}}
    patch = kopf.Patch()
    storage.store(body=_body(small), patch=patch, essence=storage.build(body=_body(small)))
    assert '"maintenance_message":"hi"' in patch["status"]["lastHandledConfiguration"]

    large = {"settings": {"maintenance": {"maintenance_message": "z" * 200_000}}}
    patch = kopf.Patch()
    storage.store(body=_body(large), patch=patch, essence=storage.build(body=_body(large)))
    stored = patch["status"]["lastHandledConfiguration"]
    assert stored.startswith(DIGEST_PREFIX) and len(stored) < 100
    # Unchanged: kopf sees the current essence (no diff, no update handler); changed: a diff.
    assert storage.fetch(body=_body(large, stored)) == storage.build(body=_body(large, stored))
    changed = {"settings": {"maintenance": {"maintenance_message": "w" * 200_000}}}
    assert storage.fetch(body=_body(changed, stored)) != storage.build(body=_body(changed, stored))


def test_no_essence_is_built_for_a_pod_and_a_hubsettings_still_has_its_own() -> None:
    """The pod index's objects have no change handlers: kopf gets no essence (no deep copy of each pod),
    and the HubSettings' essence (its spec) is unchanged by that."""
    storage = CompactStatusDiffBaseStorage(field=FIELD, ignored_fields=["metadata"])
    pod = kopf.Body(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hub-0"}, "spec": {"containers": []}}
    )
    assert storage.build(body=pod) is None and storage.fetch(body=pod) is None
    spec = {"settings": {"maintenance": {"maintenance_message": "hi"}}}
    assert storage.build(body=_body(spec)) == {"spec": spec}
    no_kind = kopf.Body({"metadata": {}, "spec": spec})  # without a kind: kopf's own essence, as before
    assert storage.build(body=no_kind) == {"spec": spec}


def test_cli_validate_refuses_a_spec_over_the_limit(tmp_path: Path) -> None:
    import yaml
    from click.testing import CliRunner

    from hubsettings_operator.cli import main

    def manifest(size: int) -> Path:
        path = tmp_path / f"hub-{size}.yaml"
        doc = {"apiVersion": "scion.dev/v1alpha1", "kind": "HubSettings", "metadata": {"name": "hub"}}
        path.write_text(yaml.safe_dump({**doc, "spec": spec_of(size)}))
        return path

    assert CliRunner().invoke(main, ["validate", "-f", str(manifest(MAX_SPEC_BYTES))]).exit_code == 0
    over = CliRunner().invoke(main, ["validate", "-f", str(manifest(MAX_SPEC_BYTES + 1))])
    assert over.exit_code == 1 and f"{MAX_SPEC_BYTES + 1} bytes" in over.output


def test_a_spec_nested_too_deep_to_measure_is_refused_not_raised() -> None:
    """Measuring the size serialises the spec; one nested thousands of levels deep gets the depth error."""
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    spec, errors = validate_spec(
        {"database": {"secretRef": {"name": "db"}}, "extraSettings": {"x.deep": deep}}
    )
    assert spec is None and [e.path for e in errors] == ["spec"] and "nested" in errors[0].reason
