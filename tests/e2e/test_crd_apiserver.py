"""The generated HubSettings CRD against a real kube-apiserver (issue 5's acceptance).

Everything here is enforced by the API server alone (no operator runs): the CRD installs by server-side apply
and becomes Established; its descriptions reach `kubectl explain` and the OpenAPI v3 document; the schema and
its CEL rules reject Layer 0 keys, wrong types, out-of-range values, reserved extraSettings keys and
contradictory database options with 422; strict field validation rejects unknown fields while extraSettings
keeps arbitrary JSON verbatim; every example manifest passes a server-side dry run; the status subresource
isolates status from spec writes; and the printer columns show the conditions.

Over 400 lines: one file per tier subject (the CRD as the API server serves it), sharing one API server.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from tests.support.kubeenv import REPO_ROOT, KubeTestEnv
from tests.support.waits import retry

T = TypeVar("T")

CRD_FILE = REPO_ROOT / "crds" / "hubsettings.yaml"
EXAMPLES_DIR = REPO_ROOT / "examples"
GROUP = "scion.dev"
VERSION = "v1alpha1"
PLURAL = "hubsettings"
KIND = "HubSettings"
CRD_NAME = f"{PLURAL}.{GROUP}"
FIELD_MANAGER = "hubsettings-e2e-crd"
EXAMPLES_NAMESPACE = "scion"
KUBECTL = "/usr/bin/kubectl"


# -- helpers -----------------------------------------------------------------------------------------------
def _eventually(fn: Callable[[], T], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Retry `fn` until it stops raising: CRD serving and OpenAPI publishing lag behind Established."""
    return retry(fn, timeout=timeout, interval=interval, retry_on=(ApiException, AssertionError))


def _squash(text: str) -> str:
    """Collapse all whitespace, so wrapped output compares with the one-line description."""
    return " ".join(text.split())


def _crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _settings_schema() -> dict[str, Any]:
    settings: dict[str, Any] = _crd_schema()["properties"]["spec"]["properties"]["settings"]
    return settings


class Kubectl:
    """kubectl against the test environment, with a private discovery cache (ports recur across runs)."""

    def __init__(self, env: KubeTestEnv, cache_dir: Path) -> None:
        self.base = [KUBECTL, f"--kubeconfig={env.kubeconfig}", f"--cache-dir={cache_dir}"]

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*self.base, *args], input=stdin, capture_output=True, text=True, check=False, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


def _apply_crd(kubectl: Kubectl) -> subprocess.CompletedProcess[str]:
    # --force-conflicts: another module may have applied the same CRD with its own field manager.
    return kubectl.run(
        "apply",
        "--server-side",
        f"--field-manager={FIELD_MANAGER}",
        "--force-conflicts",
        "-f",
        str(CRD_FILE),
    )


def _hub(name: str, spec_extra: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """A valid HubSettings body; `spec_extra` is merged into the spec, `top` adds top-level fields."""
    spec: dict[str, Any] = {
        "database": {"secretRef": {"name": "hub-db", "key": "url"}},
        "settings": {"access": {"admin_emails": ["ops@example.com"]}},
    }
    spec.update(spec_extra or {})
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec, **top}


def _message(exc: ApiException) -> str:
    body = exc.body
    text = body.decode() if isinstance(body, bytes) else str(body or "")
    try:
        return str(json.loads(text).get("message", text))
    except ValueError:
        return text


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _ensure_namespace(api: k8s_client.ApiClient, name: str) -> None:
    try:
        k8s_client.CoreV1Api(api).create_namespace(
            k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(name=name))
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


# -- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kubectl(kube_env: KubeTestEnv, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(kube_env, tmp_path_factory.mktemp("kubectl-cache"))


@pytest.fixture(scope="module")
def hubsettings_crd(kubectl: Kubectl, kube_api: k8s_client.ApiClient) -> Iterator[str]:
    """The CRD of crds/hubsettings.yaml, server-side applied (idempotent), Established and served."""
    _apply_crd(kubectl)
    # kubectl wait fails at once while the CRD has no conditions yet (the bigger the schema, the longer that
    # lasts): retry it until the API server has set them.
    _eventually(
        lambda: kubectl.run("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=30s"),
        timeout=60.0,
        interval=0.5,
    )
    # The Established condition can precede the resource handler: wait until a list is served.
    objects = k8s_client.CustomObjectsApi(kube_api)
    _eventually(lambda: objects.list_cluster_custom_object(GROUP, VERSION, PLURAL))
    # Left installed: other modules may use it and the session's etcd is thrown away at the end.
    yield CRD_NAME


@pytest.fixture(scope="module")
def ns(kube_api: k8s_client.ApiClient) -> str:
    # Never deleted: without kube-controller-manager a deleted namespace stays Terminating.
    name = _unique("crd")
    _ensure_namespace(kube_api, name)
    return name


@pytest.fixture
def objects(kube_api: k8s_client.ApiClient, hubsettings_crd: str) -> k8s_client.CustomObjectsApi:
    del hubsettings_crd
    return k8s_client.CustomObjectsApi(kube_api)


def _obj(value: object) -> dict[str, Any]:
    """The client types custom objects as `object`: they are JSON objects."""
    assert isinstance(value, dict), value
    return value


def _create(objects: k8s_client.CustomObjectsApi, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    return _obj(
        objects.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body, field_validation="Strict")
    )


def _get(objects: k8s_client.CustomObjectsApi, ns: str, name: str) -> dict[str, Any]:
    return _obj(objects.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name))


def _rejected(objects: k8s_client.CustomObjectsApi, ns: str, body: dict[str, Any]) -> ApiException:
    with pytest.raises(ApiException) as caught:
        _create(objects, ns, body)
    # Nothing was stored.
    with pytest.raises(ApiException) as missing:
        _get(objects, ns, body["metadata"]["name"])
    assert missing.value.status == 404
    return caught.value


# -- 1. install ----------------------------------------------------------------------------------------------
def test_crd_installs_established_and_reapplies_idempotently(
    hubsettings_crd: str, kubectl: Kubectl, kube_api: k8s_client.ApiClient
) -> None:
    ext = k8s_client.ApiextensionsV1Api(kube_api)
    crd = ext.read_custom_resource_definition(hubsettings_crd)
    assert crd.status is not None
    assert crd.status.accepted_names is not None
    assert crd.metadata is not None
    conditions = {c.type: c.status for c in crd.status.conditions or []}
    assert conditions.get("Established") == "True", conditions
    assert conditions.get("NamesAccepted") == "True", conditions
    assert "NonStructuralSchema" not in conditions, conditions
    assert crd.status.accepted_names.kind == KIND
    assert crd.status.accepted_names.short_names == ["hs"]
    assert crd.status.stored_versions == [VERSION]
    managers = {m.manager for m in crd.metadata.managed_fields or []}
    assert FIELD_MANAGER in managers, managers

    # Re-applying the same manifest with the same field manager succeeds and changes nothing.
    before = crd.metadata.generation
    again = _apply_crd(kubectl)
    assert "serverside-applied" in again.stdout, again.stdout
    after = ext.read_custom_resource_definition(hubsettings_crd)
    assert after.metadata is not None
    assert after.metadata.generation == before

    # The short name and category resolve through discovery.
    listed = kubectl.run("get", "hs", "-A", "--no-headers")
    assert listed.returncode == 0
    by_category = kubectl.run("get", "scion", "-A")
    assert "error" not in by_category.stderr.lower(), by_category.stderr


# -- 2. descriptions ---------------------------------------------------------------------------------------
def test_kubectl_explain_shows_descriptions(hubsettings_crd: str, kubectl: Kubectl) -> None:
    del hubsettings_crd
    settings = _settings_schema()
    settings_desc = _squash(settings["description"])
    access_desc = _squash(settings["properties"]["access"]["description"])
    assert "Layer 1 (operational) settings" in settings_desc
    assert "Who may use the Hub" in access_desc

    out = _eventually(lambda: kubectl.run("explain", "hubsettings.spec.settings").stdout)
    flat = _squash(out)
    assert "KIND: HubSettings" in flat
    assert "Layer 1 (operational) settings, grouped by the Hub's sections" in flat
    assert settings_desc in flat
    assert "Who may use the Hub" in flat
    assert access_desc in flat
    # Fields are listed with their types.
    assert "admin_emails" not in flat  # one level only
    for section in ("access", "lifecycle", "maintenance", "telemetry", "agent_defaults"):
        assert f"{section} <Object>" in flat, section

    access = _squash(kubectl.run("explain", "hubsettings.spec.settings.access").stdout)
    assert access_desc in access
    assert "admin_emails <[]string>" in access
    admin_desc = _squash(settings["properties"]["access"]["properties"]["admin_emails"]["description"])
    assert admin_desc in access


def test_openapi_v3_publishes_descriptions(hubsettings_crd: str, kube_env: KubeTestEnv) -> None:
    del hubsettings_crd
    settings = _settings_schema()

    def fetch() -> dict[str, Any]:
        status, body = kube_env.get_raw(f"/openapi/v3/apis/{GROUP}/{VERSION}")
        assert status == 200, body[:500]
        doc: dict[str, Any] = json.loads(body)
        assert f"dev.scion.{VERSION}.{KIND}" in doc.get("components", {}).get("schemas", {})
        return doc

    doc = _eventually(fetch)
    schema = doc["components"]["schemas"][f"dev.scion.{VERSION}.{KIND}"]
    published = schema["properties"]["spec"]["properties"]["settings"]
    assert published["description"] == settings["description"]
    assert published["properties"]["access"]["description"] == settings["properties"]["access"]["description"]
    assert "Who may use the Hub" in published["properties"]["access"]["description"]
    # The Layer 0 guidance is part of the published schema too.
    assert "bootstrap (Layer 0)" in published["properties"]["log_level"]["description"]
    assert f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}" in doc["paths"]


# -- 3. schema and CEL rejections -----------------------------------------------------------------------------
def test_layer0_key_under_settings_is_rejected_with_cel_guidance(
    objects: k8s_client.CustomObjectsApi, ns: str
) -> None:
    exc = _rejected(objects, ns, _hub("layer0", {"settings": {"log_level": "debug"}}))
    assert exc.status == 422
    msg = _message(exc)
    assert "spec.settings.log_level" in msg, msg
    assert "bootstrap (Layer 0)" in msg, msg
    assert "spec.bootstrap.expected" in msg, msg
    assert "server.log_level" in msg, msg

    # A secret under settings gets its own guidance.
    secret = _rejected(objects, ns, _hub("secret", {"settings": {"client_secret": "s3cr3t"}}))
    assert secret.status == 422
    assert "never a HubSettings" in _message(secret)


def test_wrong_type_is_rejected(objects: k8s_client.CustomObjectsApi, ns: str) -> None:
    exc = _rejected(
        objects, ns, _hub("wrongtype", {"settings": {"agent_defaults": {"default_max_turns": "many"}}})
    )
    assert exc.status == 422
    msg = _message(exc)
    assert "spec.settings.agent_defaults.default_max_turns" in msg, msg
    assert "integer" in msg, msg


def test_below_minimum_is_rejected(objects: k8s_client.CustomObjectsApi, ns: str) -> None:
    exc = _rejected(
        objects, ns, _hub("zeroturns", {"settings": {"agent_defaults": {"default_max_turns": 0}}})
    )
    assert exc.status == 422
    msg = _message(exc)
    assert "spec.settings.agent_defaults.default_max_turns" in msg, msg
    assert "greater than or equal to 1" in msg, msg

    # The boundary itself is fine.
    ok = _create(objects, ns, _hub("oneturn", {"settings": {"agent_defaults": {"default_max_turns": 1}}}))
    assert ok["spec"]["settings"]["agent_defaults"]["default_max_turns"] == 1


def test_extra_settings_count_limit_is_enforced_by_the_server(
    objects: k8s_client.CustomObjectsApi, ns: str
) -> None:
    """The server bounds extraSettings; its key rules (no `_meta`, no section names) are the operator's:
    CEL cannot range over a preserved-unknown object, so the server accepts them and the operator refuses
    them with InvalidSpec (tested in the operator e2e and in tests/unit/test_validation.py)."""
    too_many = {f"k{i}": i for i in range(101)}
    exc = _rejected(objects, ns, _hub("toomany", {"extraSettings": too_many}))
    assert exc.status == 422
    assert "spec.extraSettings" in _message(exc)
    accepted = _create(objects, ns, _hub("meta", {"extraSettings": {"_meta": {"v": 1}}}))
    assert accepted["spec"]["extraSettings"] == {"_meta": {"v": 1}}
    from hubsettings_operator.spec.validation import validate_spec

    spec, errors = validate_spec(accepted["spec"])
    assert spec is None and any(e.path == "spec.extraSettings._meta" for e in errors)


def test_create_table_with_scion_profile_is_rejected(objects: k8s_client.CustomObjectsApi, ns: str) -> None:
    db = {"secretRef": {"name": "hub-db"}, "profile": "scion", "createTable": True}
    exc = _rejected(objects, ns, _hub("createtable", {"database": db}))
    assert exc.status == 422
    msg = _message(exc)
    assert "spec.database" in msg, msg
    assert "createTable applies to the proposal profile only" in msg, msg

    # The same option is valid for the proposal profile.
    ok_db = {"secretRef": {"name": "hub-db"}, "profile": "proposal", "createTable": True}
    ok = _create(objects, ns, _hub("createtable-proposal", {"database": ok_db}))
    assert ok["spec"]["database"]["createTable"] is True


# -- 4. strict unknown fields vs. extraSettings ------------------------------------------------------------
def test_unknown_field_in_section_is_rejected_by_strict_validation(
    objects: k8s_client.CustomObjectsApi, kubectl: Kubectl, ns: str
) -> None:
    body = _hub("typo", {"settings": {"access": {"adminemails": ["ops@example.com"]}}})
    exc = _rejected(objects, ns, body)
    assert exc.status in (400, 422)
    assert 'unknown field "spec.settings.access.adminemails"' in _message(exc), _message(exc)

    # kubectl apply --server-side validates strictly by default.
    body["metadata"]["namespace"] = ns
    proc = kubectl.run("apply", "--server-side", "-f", "-", stdin=json.dumps(body), check=False)
    assert proc.returncode != 0, proc.stdout
    assert "spec.settings.access.adminemails" in proc.stderr, proc.stderr
    # Server-side apply words it as its typed-patch error; plain strict decoding as "unknown field".
    assert "field not declared in schema" in proc.stderr or "unknown field" in proc.stderr, proc.stderr
    with pytest.raises(ApiException) as missing:
        _get(objects, ns, "typo")
    assert missing.value.status == 404

    # Without strict validation the typo would be silently pruned: this is why strict matters.
    pruned = _obj(
        objects.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body, field_validation="Ignore")
    )
    assert pruned["spec"]["settings"]["access"] == {}


def test_extra_settings_accepts_and_preserves_arbitrary_json(
    objects: k8s_client.CustomObjectsApi, kubectl: Kubectl, ns: str
) -> None:
    extra = {"newsection": {"any": [1, {"x": True}], "nested": {"deep": {"n": None, "s": "v", "f": 1.5}}}}
    created = _create(objects, ns, _hub("extra", {"extraSettings": extra}))
    assert created["spec"]["extraSettings"] == extra
    assert _get(objects, ns, "extra")["spec"]["extraSettings"] == extra

    # Same through kubectl's strict server-side apply.
    body = _hub("extra-ssa", {"extraSettings": extra})
    body["metadata"]["namespace"] = ns
    kubectl.run(
        "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-", stdin=json.dumps(body)
    )
    assert _get(objects, ns, "extra-ssa")["spec"]["extraSettings"] == extra


# -- 5. examples -----------------------------------------------------------------------------------------------
def _example_documents() -> list[tuple[str, int, dict[str, Any]]]:
    docs: list[tuple[str, int, dict[str, Any]]] = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and doc.get("kind") == KIND:
                docs.append((path.name, index, doc))
    return docs


EXAMPLE_DOCS = _example_documents()


def test_examples_include_minimal_and_full() -> None:
    names = {name for name, _, _ in EXAMPLE_DOCS}
    assert {"minimal.yaml", "full.yaml"} <= names, names


@pytest.mark.parametrize(
    "doc", [pytest.param(doc, id=f"{name}#{index}") for name, index, doc in EXAMPLE_DOCS]
)
def test_example_passes_server_side_dry_run(
    doc: dict[str, Any], hubsettings_crd: str, kubectl: Kubectl, kube_api: k8s_client.ApiClient
) -> None:
    del hubsettings_crd
    namespace = doc.get("metadata", {}).get("namespace", EXAMPLES_NAMESPACE)
    _ensure_namespace(kube_api, namespace)
    proc = kubectl.run(
        "apply",
        "--server-side",
        "--dry-run=server",
        f"--field-manager={FIELD_MANAGER}",
        "-o",
        "json",
        "-f",
        "-",
        stdin=json.dumps(doc),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    returned = json.loads(proc.stdout)
    assert returned["kind"] == KIND
    # The server returns the object as it would store it: nothing of the example's spec was pruned.
    assert returned["spec"] == doc["spec"]


# -- 6. status subresource -------------------------------------------------------------------------------------
_STATUS = {
    "observedGeneration": 1,
    "profile": "scion",
    "appliedKeys": 2,
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Applied", "message": "ok"},
        {"type": "Synced", "status": "True", "reason": "Applied", "message": "ok"},
        {"type": "Drifted", "status": "False", "reason": "NoDrift", "message": "ok"},
    ],
}


def test_status_subresource_isolates_status_from_spec(objects: k8s_client.CustomObjectsApi, ns: str) -> None:
    created = _create(objects, ns, _hub("status", status=_STATUS))
    # Create ignores the given status; the CRD's default says "not observed yet" (kstatus: InProgress).
    assert created.get("status") == {"observedGeneration": -1}, created.get("status")
    assert _get(objects, ns, "status").get("status") == {"observedGeneration": -1}
    generation = created["metadata"]["generation"]
    assert generation == 1

    # A patch of the main resource cannot set status (and, without a spec change, keeps the generation).
    objects.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "status", {"status": _STATUS})
    main_patched = _get(objects, ns, "status")
    assert main_patched.get("status") == {"observedGeneration": -1}
    assert main_patched["metadata"]["generation"] == generation

    # The /status subresource does set it, without bumping the generation.
    patched = _obj(
        objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, "status", {"status": _STATUS}
        )
    )
    assert patched["status"]["appliedKeys"] == 2
    got = _get(objects, ns, "status")
    assert got["status"]["profile"] == "scion"
    assert [c["type"] for c in got["status"]["conditions"]] == ["Ready", "Synced", "Drifted"]
    assert got["metadata"]["generation"] == generation
    assert got["metadata"]["resourceVersion"] != main_patched["metadata"]["resourceVersion"]

    # ... and a /status patch cannot change the spec.
    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, "status", {"spec": {"suspend": True}, "status": {"appliedKeys": 3}}
    )
    got = _get(objects, ns, "status")
    assert "suspend" not in got["spec"]
    assert got["status"]["appliedKeys"] == 3
    assert got["metadata"]["generation"] == generation

    # A spec change bumps the generation and keeps the status.
    objects.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "status", {"spec": {"suspend": True}, "status": {"appliedKeys": 9}}
    )
    got = _get(objects, ns, "status")
    assert got["spec"]["suspend"] is True
    assert got["metadata"]["generation"] == generation + 1
    assert got["status"]["appliedKeys"] == 3


# -- 7. printer columns -------------------------------------------------------------------------------------
def _table(text: str) -> list[dict[str, str]]:
    """Parse kubectl's table output by the header's column positions (empty cells stay empty)."""
    header, *rows = text.splitlines()
    names = header.split()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    ends = [*starts[1:], None]
    return [{n: row[b:e].strip() for n, b, e in zip(names, starts, ends, strict=True)} for row in rows]


def test_printer_columns(
    objects: k8s_client.CustomObjectsApi, kubectl: Kubectl, kube_api: k8s_client.ApiClient
) -> None:
    # A namespace of its own, so the table has exactly one row.
    namespace = _unique("crd-cols")
    _ensure_namespace(kube_api, namespace)
    _create(objects, namespace, _hub("hub"))
    columns = ["NAME", "READY", "SYNCED", "DRIFTED", "KEYS", "CONVERGED", "AGE"]

    before = kubectl.run("get", "hs", "-n", namespace).stdout
    assert before.splitlines()[0].split() == columns, before
    (row,) = _table(before)
    assert row["NAME"] == "hub"
    # No status yet: the condition and key columns are empty.
    assert [row[c] for c in ("READY", "SYNCED", "DRIFTED", "KEYS", "CONVERGED")] == ["", "", "", "", ""], row
    assert row["AGE"], row

    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "hub", {"status": _STATUS}
    )
    after = kubectl.run("get", "hs", "-n", namespace).stdout
    assert after.splitlines()[0].split() == columns, after
    (row,) = _table(after)
    assert [row[c] for c in columns[:5]] == ["hub", "True", "True", "False", "2"], row

    # PROFILE has priority 1: only in the wide output.
    wide = kubectl.run("get", "hs", "-n", namespace, "-o", "wide").stdout
    assert wide.splitlines()[0].split() == [
        "NAME",
        "READY",
        "SYNCED",
        "DRIFTED",
        "KEYS",
        "CONVERGED",
        "PROFILE",
        "AGE",
    ]
    (row,) = _table(wide)
    assert row["PROFILE"] == "scion"
    assert row["READY"] == "True"
