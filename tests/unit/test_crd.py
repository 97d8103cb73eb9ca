"""The generated CRD: committed copy in sync, structural schema, CEL rules, printer columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hubsettings_operator.spec import crd
from hubsettings_operator.spec.reference import render as render_reference

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crd_is_the_generated_one() -> None:
    committed = (ROOT / "crds" / "hubsettings.yaml").read_text()
    assert committed == crd.render(), "run `make generated` and commit crds/hubsettings.yaml"


def test_committed_reference_is_the_generated_one() -> None:
    committed = (ROOT / "docs" / "crd-reference.md").read_text()
    assert committed.strip() == render_reference().strip(), (
        "run `make generated` and commit docs/crd-reference.md"
    )


def _walk(node: dict[str, Any], path: str, problems: list[str]) -> None:
    typed = (
        "type" in node
        or node.get("x-kubernetes-int-or-string")
        or node.get("x-kubernetes-preserve-unknown-fields")
    )
    if not typed:
        problems.append(f"{path}: no type")
    for banned in ("$ref", "anyOf", "allOf", "oneOf", "title", "default", "$defs"):
        if banned == "default" and path in STATUS_DEFAULTS:
            continue  # the one deliberate default: a just-created object reads as not observed (issue 25)
        if banned in node:
            problems.append(f"{path}: has {banned}")
    if "description" not in node and path.count(".") > 1 and not path.endswith(("[]", "{}")):
        problems.append(f"{path}: no description")
    for name, child in (node.get("properties") or {}).items():
        _walk(child, f"{path}.{name}", problems)
    if isinstance(node.get("items"), dict):
        _walk(node["items"], f"{path}[]", problems)
    if isinstance(node.get("additionalProperties"), dict):
        _walk(node["additionalProperties"], f"{path}{{}}", problems)


STATUS_DEFAULTS = {"status", "status.observedGeneration"}


def test_status_defaults_to_not_observed() -> None:
    status = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["default"] == {"observedGeneration": -1}
    assert status["properties"]["observedGeneration"]["default"] == -1


def test_schema_is_structural_and_described() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    problems: list[str] = []
    _walk(schema["properties"]["spec"], "spec", problems)
    _walk(schema["properties"]["status"], "status", problems)
    assert problems == []


def test_identity_and_printer_columns() -> None:
    doc = yaml.safe_load(crd.render())
    assert doc["metadata"]["name"] == "hubsettings.scion.dev"
    spec = doc["spec"]
    assert spec["names"]["shortNames"] == ["hs"] and spec["scope"] == "Namespaced"
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names[:6] == ["Ready", "Synced", "Drifted", "Keys", "Converged", "Profile"] and names[-1] == "Age"
    converged = version["additionalPrinterColumns"][4]
    assert converged["jsonPath"] == ".status.convergence.summary"


def test_layer0_traps_have_cel_rules_with_guidance() -> None:
    settings = crd.spec_schema()["properties"]["settings"]
    rules = {r["rule"]: r["message"] for r in settings["x-kubernetes-validations"]}
    msg = rules["!has(self.log_level)"]
    assert "bootstrap (Layer 0)" in msg and "spec.bootstrap.expected" in msg
    assert "secret backend" in rules["!has(self.client_secret)"]
    # Sections stay real, typed properties with unknown fields rejected (no preserve-unknown-fields).
    access = settings["properties"]["access"]
    assert "x-kubernetes-preserve-unknown-fields" not in access
    assert access["properties"]["admin_emails"]["items"]["type"] == "string"
    # Operator rules (email format, Go durations) are checked by the operator, which names the rule; the CRD
    # carries only what the Hub itself refuses in every generation.
    assert "pattern" not in access["properties"]["admin_emails"]["items"]


def test_extra_settings_is_free_form_but_bounded() -> None:
    extra = crd.spec_schema()["properties"]["extraSettings"]
    assert extra["x-kubernetes-preserve-unknown-fields"] is True
    assert extra["maxProperties"] == 100
    # Key rules are the operator's (CEL cannot range over a preserved-unknown object): see test_validation.
    assert "x-kubernetes-validations" not in extra


def test_trap_properties_are_typed_so_cel_can_see_them() -> None:
    props = crd.spec_schema()["properties"]["settings"]["properties"]
    assert props["database"]["type"] == "object"
    assert props["dev_mode"]["type"] == "boolean"
    assert props["log_level"].get("x-kubernetes-int-or-string") is True
