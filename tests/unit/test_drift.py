"""Layer 0 drift (issue 7): the pure `drift.compute`, its sources and rules. No I/O.

Over 400 lines: one subject, the comparison rules of drift/ (env, envFrom, settings.yaml files, Secrets,
consistency, Layer 1 overrides); the `drift` command is tests/unit/test_drift_cli.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hubsettings_operator.drift import layer0 as drift
from hubsettings_operator.drift.layer0 import Sources, compute, label_selector, normalize, referenced_sources
from hubsettings_operator.redact import fingerprint
from hubsettings_operator.spec import catalog
from hubsettings_operator.spec.models import DriftStatus, LabelSelector, Profile
from hubsettings_operator.table.layouts import layout_for
from tests.support.pods import DSN, b64, env, pod, secret_env


def reasons(status: DriftStatus) -> list[tuple[str, str, str]]:
    return [(i.pod, i.key, i.reason) for i in status.items]


# ---- literal env, refs, envFrom, settings.yaml ---------------------------------------------------------


def test_literal_env_matches_and_mismatches() -> None:
    pods = [pod("a", env(SCION_SERVER_LOGLEVEL="info")), pod("b", env(SCION_SERVER_LOGLEVEL="debug"))]
    status = compute(pods, {"server.log_level": "info"}, require_consistency=False)
    assert status.checkedPods == 2
    assert status.driftedPods == 1
    [item] = status.items
    assert (item.pod, item.key, item.env, item.reason) == (
        "b",
        "server.log_level",
        "SCION_SERVER_LOGLEVEL",
        "mismatch",
    )
    assert (item.expected, item.actual, item.source) == ("info", "debug", "env")


def test_mismatch_names_the_env_var_that_sets_it() -> None:
    status = compute([pod("a", env(SCION_LOG_LEVEL="warn"))], {"server.log_level": "info"})
    [item] = status.items
    assert item.reason == "mismatch"
    assert item.env == "SCION_LOG_LEVEL"
    assert "SCION_LOG_LEVEL" in (item.message or "")


def test_configmap_key_ref_is_resolved() -> None:
    ref = [
        {
            "name": "SCION_SERVER_AUTH_MODE",
            "valueFrom": {"configMapKeyRef": {"name": "hub-cfg", "key": "mode"}},
        }
    ]
    sources = Sources(configmaps={"hub-cfg": {"mode": "dev"}})
    status = compute([pod("a", ref)], {"server.auth.mode": "oauth"}, sources=sources)
    [item] = status.items
    assert (item.reason, item.expected, item.actual, item.source) == (
        "mismatch",
        "oauth",
        "dev",
        "configMap/hub-cfg",
    )
    assert compute([pod("a", ref)], {"server.auth.mode": "dev"}, sources=sources).items == []


def test_secret_ref_is_compared_by_fingerprint_and_never_shown() -> None:
    other = "postgres://hub:other-Passw0rd@postgres:5432/hub"
    pods = [
        pod("a", secret_env("hub-db")),
        pod("b", secret_env("hub-db")),
        pod("c", secret_env("hub-db-old")),
    ]
    sources = Sources(secrets={"hub-db": {"url": b64(DSN)}, "hub-db-old": {"url": b64(other)}})
    # Expected given in clear (discouraged but accepted): fingerprinted, never kept.
    status = compute(pods, {"server.database.url": DSN}, sources=sources)
    [item] = status.items
    assert (item.pod, item.reason, item.source) == ("c", "mismatch", "secret/hub-db-old")
    assert item.expected == fingerprint(DSN)
    assert item.actual == fingerprint(other)
    # Without expected, the peer vote shows fingerprints too.
    status2 = compute(pods, {}, sources=sources)
    [peer] = status2.items
    assert (peer.pod, peer.reason, peer.expected, peer.actual) == (
        "c",
        "differsFromPeers",
        fingerprint(DSN),
        fingerprint(other),
    )
    for s in (status, status2):
        dumped = s.model_dump_json()
        for secret in (DSN, other):
            assert secret not in dumped
            assert b64(secret) not in dumped
            assert "s3cr3t" not in dumped and "other-Passw0rd" not in dumped


def test_expected_secret_given_as_fingerprint_matches() -> None:
    sources = Sources(secrets={"hub-db": {"url": b64(DSN)}})
    pods = [pod("a", secret_env())]
    fp = fingerprint(DSN)
    assert compute(pods, {"server.database.url": fp}, sources=sources).items == []
    # The full digest and a (long enough) prefix name the same value; upper case too.
    import hashlib

    full = "sha256:" + hashlib.sha256(DSN.encode()).hexdigest()
    assert compute(pods, {"server.database.url": full}, sources=sources).items == []
    assert compute(pods, {"server.database.url": fp[:15].upper()}, sources=sources).items == []
    # A too-short prefix is no check at all: reported, with a hint.
    [short] = compute(pods, {"server.database.url": fp[:10]}, sources=sources).items
    assert short.reason == "mismatch" and "at least" in (short.message or "")
    [wrong] = compute(pods, {"server.database.url": "sha256:000000000000"}, sources=sources).items
    assert wrong.reason == "mismatch" and wrong.actual == fp


def test_catalog_secret_key_from_a_literal_is_fingerprinted() -> None:
    status = compute(
        [pod("a", env(SCION_SERVER_DATABASE_URL=DSN))], {"server.database.url": "sha256:ffffffffffff"}
    )
    [item] = status.items
    assert item.actual == fingerprint(DSN)
    assert DSN not in status.model_dump_json()


def test_non_secret_key_from_a_secret_is_fingerprinted_on_every_pod() -> None:
    # One pod takes the auth mode from a Secret, two from literals: showing the literals in clear next to the
    # Secret's fingerprint would reveal it, so every pod's value is a fingerprint.
    from_secret = [
        {"name": "SCION_SERVER_AUTH_MODE", "valueFrom": {"secretKeyRef": {"name": "s", "key": "m"}}}
    ]
    pods = [
        pod("a", from_secret),
        pod("b", env(SCION_SERVER_AUTH_MODE="oauth")),
        pod("c", env(SCION_SERVER_AUTH_MODE="dev")),
    ]
    status = compute(pods, {}, sources=Sources(secrets={"s": {"m": b64("oauth")}}))
    [item] = status.items
    assert (item.pod, item.reason, item.actual, item.expected) == (
        "c",
        "differsFromPeers",
        fingerprint("dev"),
        fingerprint("oauth"),
    )
    assert '"oauth"' not in status.model_dump_json()
    # A plain expected value still matches a Secret-held one (compared by fingerprint).
    assert (
        compute(
            [pods[0]], {"server.auth.mode": "oauth"}, sources=Sources(secrets={"s": {"m": b64("oauth")}})
        ).items
        == []
    )


def test_unreadable_secret_is_unresolved() -> None:
    status = compute(
        [pod("a", secret_env())],
        {"server.database.url": "sha256:0123456789ab"},
        sources=Sources(secrets={"hub-db": None}),
    )
    [item] = status.items
    assert (item.reason, item.source, item.env, item.actual) == (
        "unresolved",
        "secret/hub-db",
        "SCION_SERVER_DATABASE_URL",
        None,
    )
    # A Secret the caller did not read at all is unresolved too, never "empty".
    [item2] = compute([pod("a", secret_env())], {"server.database.url": "sha256:0123456789ab"}).items
    assert item2.reason == "unresolved"


def test_unresolved_values_take_no_part_in_the_vote() -> None:
    pods = [pod("a", secret_env("x")), pod("b", secret_env("y")), pod("c", secret_env("y"))]
    status = compute(pods, {}, sources=Sources(secrets={"x": None, "y": {"url": b64(DSN)}}))
    assert status.items == []


def test_env_from_configmap_and_secret_with_prefix() -> None:
    env_from = [
        {"configMapRef": {"name": "hub-env"}},
        {"secretRef": {"name": "hub-secrets"}, "prefix": "SCION_SERVER_"},
    ]
    sources = Sources(
        configmaps={"hub-env": {"SCION_SERVER_LOGLEVEL": "debug", "OTHER": "x"}},
        secrets={"hub-secrets": {"DATABASE_URL": b64(DSN)}},
    )
    status = compute(
        [pod("a", env_from=env_from)],
        {"server.log_level": "info", "server.database.url": fingerprint(DSN)},
        sources=sources,
    )
    [item] = status.items
    assert (item.key, item.reason, item.source, item.env, item.actual) == (
        "server.log_level",
        "mismatch",
        "envFrom:configMap/hub-env",
        "SCION_SERVER_LOGLEVEL",
        "debug",
    )
    assert DSN not in status.model_dump_json()


def test_env_overrides_env_from() -> None:
    env_from = [{"configMapRef": {"name": "hub-env"}}]
    sources = Sources(configmaps={"hub-env": {"SCION_SERVER_LOGLEVEL": "debug"}})
    p = pod("a", env(SCION_SERVER_LOGLEVEL="info"), env_from=env_from)
    assert compute([p], {"server.log_level": "info"}, sources=sources).items == []
    view = drift.container_view(p, p["spec"]["containers"][0], sources, False, [])
    assert view.values["server.log_level"].source == "env"


def test_env_wins_over_env_from_across_alias_names() -> None:
    # envFrom sets the primary name, env sets the alias: env still wins (Kubernetes precedence).
    env_from = [{"configMapRef": {"name": "hub-env"}}]
    sources = Sources(configmaps={"hub-env": {"SCION_SERVER_LOGLEVEL": "debug"}})
    p = pod("a", env(SCION_LOG_LEVEL="info"), env_from=env_from)
    view = drift.container_view(p, p["spec"]["containers"][0], sources, False, [])
    assert (view.values["server.log_level"].text, view.values["server.log_level"].env) == (
        "info",
        "SCION_LOG_LEVEL",
    )


def test_unreadable_env_from_makes_unset_keys_unresolved() -> None:
    p = pod("a", env(SCION_SERVER_AUTH_MODE="oauth"), env_from=[{"secretRef": {"name": "hub-secrets"}}])
    status = compute(
        [p],
        {"server.auth.mode": "oauth", "server.log_level": "info"},
        sources=Sources(secrets={"hub-secrets": None}),
    )
    [item] = status.items
    assert (item.key, item.reason) == ("server.log_level", "unresolved")
    assert "envFrom:secret/hub-secrets" in (item.source or "")


SETTINGS_YAML = """
server:
  log_level: debug
  hub:
    port: 9999
  auth:
    mode: oauth
  database:
    url: postgres://hub:yaml-Secret@db/hub
"""


def _settings_pod(name: str, env_list: list[dict[str, Any]] | None = None, **mount: Any) -> dict[str, Any]:
    return pod(
        name,
        env_list,
        mounts=[{"name": "cfg", "mountPath": "/etc/scion", **mount}],
        volumes=[{"name": "cfg", "configMap": {"name": "hub-settings"}}],
    )


def test_settings_yaml_from_configmap_counts_and_env_takes_precedence() -> None:
    sources = Sources(configmaps={"hub-settings": {"settings.yaml": SETTINGS_YAML}})
    p = _settings_pod("a", env(SCION_SERVER_LOGLEVEL="info"))
    expected = {"server.log_level": "info", "server.hub.port": 9810, "server.auth.mode": "oauth"}
    status = compute([p], expected, sources=sources)
    [item] = status.items
    assert (item.key, item.reason, item.expected, item.actual) == (
        "server.hub.port",
        "mismatch",
        "9810",
        "9999",
    )
    assert item.source == "settings.yaml (configMap/hub-settings)"
    view = drift.container_view(p, p["spec"]["containers"][0], sources, False, [])
    assert view.values["server.log_level"].source == "env"
    assert view.values["server.auth.mode"].source == "settings.yaml (configMap/hub-settings)"
    # The secret in the file is a fingerprint like any other.
    assert view.values["server.database.url"].secret
    status2 = compute([p], {"server.database.url": "sha256:000000000000"}, sources=sources)
    assert "yaml-Secret" not in status2.model_dump_json()


def test_settings_yaml_by_sub_path_and_items() -> None:
    sources = Sources(configmaps={"hub-settings": {"hub.yaml": SETTINGS_YAML}})
    p = _settings_pod("a", mountPath="/etc/scion/settings.yaml", subPath="hub.yaml")
    assert compute([p], {"server.hub.port": 9999}, sources=sources).items == []
    p2 = pod(
        "b",
        mounts=[{"name": "cfg", "mountPath": "/etc/scion"}],
        volumes=[
            {
                "name": "cfg",
                "configMap": {
                    "name": "hub-settings",
                    "items": [{"key": "hub.yaml", "path": "settings.yaml"}],
                },
            }
        ],
    )
    assert compute([p2], {"server.hub.port": 9999}, sources=sources).items == []
    assert referenced_sources([p2]) == ({"hub-settings"}, set())


def test_settings_yaml_mount_unreadable_is_unresolved() -> None:
    p = _settings_pod("a", mountPath="/etc/scion/settings.yaml", subPath="settings.yaml")
    [item] = compute([p], {"server.hub.port": 9810}, sources=Sources(configmaps={"hub-settings": None})).items
    assert item.reason == "unresolved"
    # A directory mount of a volume we may not read says nothing about settings.yaml: defaults apply.
    p2 = _settings_pod("b")
    assert (
        compute([p2], {"server.hub.port": 9810}, sources=Sources(configmaps={"hub-settings": None})).items
        == []
    )


# ---- which pods and containers ---------------------------------------------------------------------------


def test_missing_container_is_skipped_and_counted() -> None:
    pods = [
        pod("a", env(SCION_SERVER_LOGLEVEL="info")),
        pod("b", env(SCION_SERVER_LOGLEVEL="info"), container="web"),
    ]
    status = compute(pods, {"server.log_level": "info"}, container="hub")
    assert (status.checkedPods, status.skippedPods, status.items) == (1, 1, [])


def test_pods_not_running_or_terminating_are_skipped() -> None:
    pods = [
        pod("a", env(SCION_SERVER_LOGLEVEL="info")),
        pod("b", env(SCION_SERVER_LOGLEVEL="debug"), phase="Pending"),
        pod("c", env(SCION_SERVER_LOGLEVEL="debug"), deleting=True),
        pod("d", env(SCION_SERVER_LOGLEVEL="debug"), phase="Succeeded"),
    ]
    status = compute(pods, {"server.log_level": "info"})
    assert (status.checkedPods, status.skippedPods, status.driftedPods, status.items) == (1, 3, 0, [])


def test_sidecars_without_hub_configuration_are_ignored() -> None:
    sidecar = {"name": "istio-proxy", "env": env(ISTIO_META="x")}
    p = pod("a", env(SCION_SERVER_AUTH_MODE="oauth"), extra_containers=[sidecar])
    status = compute([p], {"server.auth.mode": "oauth"})
    assert status.items == [] and status.checkedPods == 1
    # ...but a pod whose containers carry no Hub configuration at all keeps its main container.
    bare = pod("b", [], extra_containers=[sidecar])
    [item] = compute([bare], {"server.auth.mode": "oauth"}).items
    assert (item.container, item.reason) == ("hub", "missing")


def test_missing_key_uses_the_hub_default() -> None:
    p = pod("a", env(SCION_SERVER_AUTH_MODE="oauth"))
    assert compute([p], {"server.hub.port": 9810, "server.log_level": "info"}).items == []
    [item] = compute([p], {"server.hub.port": 9000}).items
    assert (item.reason, item.actual, item.source, item.env) == (
        "missing",
        "9810",
        "default",
        "SCION_SERVER_HUB_PORT",
    )


# ---- peers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("envs", "odd"),
    [
        # The majority says info: only b is flagged, against the majority's value.
        (
            [
                {"SCION_SERVER_LOGLEVEL": "info"},
                {"SCION_SERVER_LOGLEVEL": "debug"},
                {"SCION_SERVER_LOGLEVEL": "info"},
            ],
            ("b", "server.log_level", "differsFromPeers", "info", "debug"),
        ),
        # a sets log_level to its default; b and c leave it unset: they agree. a leaves auth.mode unset (no
        # default), so the unset value counts in the vote and a is the odd one.
        (
            [
                {"SCION_SERVER_LOGLEVEL": "info"},
                {"SCION_SERVER_AUTH_MODE": "oauth"},
                {"SCION_SERVER_AUTH_MODE": "oauth"},
            ],
            ("a", "server.auth.mode", "differsFromPeers", "oauth", drift.UNSET),
        ),
    ],
    ids=["majority-flags-only-the-odd-pod", "unset-counts-as-the-default-in-the-vote"],
)
def test_the_odd_pod_out_of_three_is_flagged_against_its_peers(
    envs: list[dict[str, str]], odd: tuple[str, str, str, Any, Any]
) -> None:
    pods = [pod(name, env(**values)) for name, values in zip("abc", envs, strict=True)]
    status = compute(pods, {})
    [item] = status.items
    assert (item.pod, item.key, item.reason, item.expected, item.actual) == odd
    assert status.driftedPods == 1
    assert compute(pods, {}, require_consistency=False).items == []


def test_tie_flags_both_pods() -> None:
    pods = [pod("a", env(SCION_SERVER_LOGLEVEL="info")), pod("b", env(SCION_SERVER_LOGLEVEL="debug"))]
    status = compute(pods, {})
    assert reasons(status) == [("a", "server.log_level", "tie"), ("b", "server.log_level", "tie")]
    assert all(i.expected is None for i in status.items)
    assert status.driftedPods == 2


def test_expected_keys_are_not_voted_on() -> None:
    pods = [pod("a", env(SCION_SERVER_LOGLEVEL="info")), pod("b", env(SCION_SERVER_LOGLEVEL="debug"))]
    assert reasons(compute(pods, {"server.log_level": "info"})) == [("b", "server.log_level", "mismatch")]


# ---- Layer 1 in env, ineffective names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_name", "profile", "managed", "effect"),
    [
        ("SCION_SERVER_HUB_ADMINEMAILS", Profile.PROPOSAL, ["access"], "overridesTable"),
        ("SCION_SERVER_HUB_ADMINEMAILS", Profile.PROPOSAL, [], "overridesTable"),
        ("SCION_SERVER_HUB_ADMINEMAILS", Profile.SCION, ["access"], "ignoredManagedRow"),
        ("SCION_SERVER_HUB_ADMINEMAILS", Profile.SCION, ["maintenance"], "bootstrapFallback"),
        ("SCION_SEED_SERVER_HUB_ADMINEMAILS", Profile.SCION, ["access"], "seedOnly"),
        ("SCION_SEED_SERVER_HUB_ADMINEMAILS", Profile.PROPOSAL, [], "seedOnly"),
    ],
)
def test_layer1_override_effect(env_name: str, profile: Profile, managed: list[str], effect: str) -> None:
    p = pod("a", [{"name": env_name, "value": "ops@example.com"}])
    status = compute(
        [p], {}, env_overrides_table=layout_for(profile).env_overrides_table, managed_sections=managed
    )
    assert status.items == []
    [o] = status.overrides
    assert (o.pod, o.container, o.key, o.env, o.effect) == (
        "a",
        "hub",
        "server.hub.admin_emails",
        env_name,
        effect,
    )


def test_ineffective_env_names_suggest_the_working_spelling() -> None:
    p = pod("a", env(SCION_SERVER_HUB_ADMIN_EMAILS="ops@example.com", SCION_SERVER_LOG_LEVEL="debug"))
    status = compute([p], {})
    by_env = {i.env: i for i in status.items}
    assert set(by_env) == {"SCION_SERVER_HUB_ADMIN_EMAILS", "SCION_SERVER_LOG_LEVEL"}
    assert all(i.reason == "ineffectiveEnv" for i in status.items)
    assert "SCION_SERVER_HUB_ADMINEMAILS" in (by_env["SCION_SERVER_HUB_ADMIN_EMAILS"].message or "")
    working = catalog.INERT_ENV["SCION_SERVER_LOG_LEVEL"]
    assert working and working in (by_env["SCION_SERVER_LOG_LEVEL"].message or "")
    assert by_env["SCION_SERVER_LOG_LEVEL"].key == "SCION_SERVER_LOG_LEVEL"
    assert status.overrides == []
    # The inert name does not count as setting the key: the default applies.
    assert [
        i.reason for i in compute([p], {"server.log_level": "debug"}).items if i.key == "server.log_level"
    ] == ["missing"]


def test_unknown_seed_names_are_ineffective_and_other_env_ignored() -> None:
    p = pod(
        "a", env(SCION_SEED_SERVER_HUB_ADMIN_EMAILS="x", PATH="/bin", HOME="/root", SCION_SOMETHING_ELSE="1")
    )
    status = compute([p], {})
    [item] = status.items
    assert (item.env, item.reason) == ("SCION_SEED_SERVER_HUB_ADMIN_EMAILS", "ineffectiveEnv")
    assert "SCION_SEED_SERVER_HUB_ADMINEMAILS" in (item.message or "")


def test_non_scion_env_is_ignored() -> None:
    p = pod("a", env(LOG_LEVEL="debug", DATABASE_URL=DSN, SERVER_HUB_PORT="1"))
    status = compute([p, copy.deepcopy(p) | {"metadata": {"name": "b"}}], {})
    assert status.items == [] and status.overrides == []


# ---- normalisation ---------------------------------------------------------------------------------------


def test_booleans_and_integers_are_normalised() -> None:
    p = pod("a", env(SCION_SERVER_AUTH_DEVMODE="True", SCION_SERVER_HUB_PORT="9810"))
    assert compute([p], {"server.auth.dev_mode": True, "server.hub.port": 9810}).items == []
    assert compute([p], {"server.auth.dev_mode": "true", "server.hub.port": "9810"}).items == []
    p1 = pod("b", env(SCION_SERVER_AUTH_DEVMODE="1", SCION_SERVER_HUB_PORT="09810"))
    assert compute([p1], {"server.auth.dev_mode": "TRUE", "server.hub.port": 9810}).items == []
    [item] = compute([p], {"server.auth.dev_mode": False}).items
    assert (item.expected, item.actual) == ("false", "true")


def test_normalize() -> None:
    assert normalize(True) == "true"
    assert normalize("True") == "true"
    assert normalize(" info ") == "info"
    assert normalize(9810) == "9810"
    assert normalize("1", "boolean") == "true"
    assert normalize("F", "boolean") == "false"
    assert normalize("1") == "1"
    assert normalize("0042", "integer") == "42"
    assert normalize("x42", "integer") == "x42"
    assert normalize(["a", "b"]) == "a,b"
    assert normalize(None) == ""


# ---- cap, determinism, scale -----------------------------------------------------------------------------


def test_cap_truncates_items() -> None:
    pods = [pod(f"p{i:03d}", env(SCION_SERVER_LOGLEVEL="debug")) for i in range(200)]
    status = compute(pods, {"server.log_level": "info"})
    assert len(status.items) == 50
    assert status.truncated == 150
    assert status.driftedPods == 200
    assert [i.pod for i in status.items] == [f"p{i:03d}" for i in range(50)]
    assert len(compute(pods, {"server.log_level": "info"}, cap=10).items) == 10


def test_deterministic_and_sorted() -> None:
    pods = [
        pod(
            "c",
            env(
                SCION_SERVER_LOGLEVEL="debug",
                SCION_SERVER_HUB_ADMIN_EMAILS="x",
                SCION_SERVER_HUB_ADMINEMAILS="y",
            ),
        ),
        pod(
            "a",
            env(
                SCION_SERVER_LOGLEVEL="warn",
                SCION_SERVER_AUTH_MODE="dev",
                SCION_SEED_SERVER_HUB_ADMINEMAILS="z",
            ),
        ),
        pod("b", env(SCION_SERVER_LOGLEVEL="info", SCION_SERVER_AUTH_MODE="oauth")),
    ]
    expected = {"server.log_level": "info", "server.hub.port": 1}
    first = compute(pods, expected, managed_sections=["access"]).model_dump_json()
    assert compute(list(reversed(pods)), expected, managed_sections=["access"]).model_dump_json() == first
    assert (
        compute(
            copy.deepcopy(pods), dict(reversed(expected.items())), managed_sections=["access"]
        ).model_dump_json()
        == first
    )
    status = DriftStatus.model_validate_json(first)
    keys = [(i.pod, i.container, i.key, i.reason) for i in status.items]
    assert keys == sorted(keys)
    okeys = [(o.pod, o.container, o.key, o.env) for o in status.overrides]
    assert okeys == sorted(okeys) and len(okeys) == 2


def test_thousand_pods_with_thirty_env_vars() -> None:
    layer0 = [
        s
        for s in catalog.settings()
        if s.layer == 0 and s.env and not s.secret and s.json_type == "string" and s.key != "server.log_level"
    ]
    assert len(layer0) >= 29
    chosen = layer0[:29]
    base_env = {s.env[0]: f"v-{s.key}" for s in chosen}
    pods = []
    for i in range(1000):
        values = dict(base_env)
        values["SCION_SERVER_LOGLEVEL"] = "debug" if i % 100 == 7 else "info"
        pods.append(pod(f"hub-{i:04d}", env(**values)))
    assert all(len(p["spec"]["containers"][0]["env"]) == 30 for p in pods)
    status = compute(pods, {chosen[0].key: f"v-{chosen[0].key}"})
    assert status.checkedPods == 1000
    assert status.driftedPods == 10
    assert status.truncated == 0
    assert {(i.reason, i.key, i.actual) for i in status.items} == {
        ("differsFromPeers", "server.log_level", "debug")
    }
    assert [i.pod for i in status.items] == [f"hub-{i:04d}" for i in range(7, 1000, 100)]


# ---- label selector, referenced sources -------------------------------------------------------------------


def test_label_selector() -> None:
    assert label_selector(LabelSelector()) == ""
    assert label_selector(LabelSelector(matchLabels={"b": "2", "a": "1"})) == "a=1,b=2"
    sel = LabelSelector.model_validate(
        {
            "matchLabels": {"app.kubernetes.io/name": "scion-hub"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "hub", "operator": "Exists"},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert (
        label_selector(sel)
        == "app.kubernetes.io/name=scion-hub,tier in (api,web),env notin (dev),hub,!canary"
    )


def test_referenced_sources() -> None:
    p = pod(
        "a",
        [
            {"name": "X", "value": "1"},
            {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "cm1", "key": "k"}}},
            {"name": "Z", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
            {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        env_from=[{"configMapRef": {"name": "cm2"}}, {"secretRef": {"name": "s2"}, "prefix": "P_"}],
        mounts=[{"name": "cfg", "mountPath": "/etc/scion"}, {"name": "tls", "mountPath": "/tls"}],
        volumes=[
            {"name": "cfg", "configMap": {"name": "cm3"}},
            {"name": "tls", "secret": {"secretName": "s3"}},
            {"name": "unmounted", "configMap": {"name": "cm-unused"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    )
    assert referenced_sources([p, pod("b", [])]) == ({"cm1", "cm2", "cm3"}, {"s1", "s2", "s3"})
    assert referenced_sources([]) == (set(), set())


# ---- the CLI's pure parts and flow, with a fake cluster ----------------------------------------------------


def test_secret_looking_keys_the_catalog_does_not_know_are_fingerprinted() -> None:
    """A settings.yaml from a ConfigMap with `password`/`*_secret` keys: compared by fingerprint only."""
    values = ["SUPERSECRET1", "SUPERSECRET2", "SUPERSECRET2"]
    pods = [
        {
            "metadata": {"name": f"p{i}"},
            "status": {"phase": "Running"},
            "spec": {
                "containers": [
                    {
                        "name": "hub",
                        "env": [{"name": "SCION_SERVER_LOGLEVEL", "value": "info"}],
                        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/scion"}],
                    }
                ],
                "volumes": [{"name": "cfg", "configMap": {"name": f"cm{i}"}}],
            },
        }
        for i in range(3)
    ]
    sources = drift.Sources(
        configmaps={
            f"cm{i}": {
                "settings.yaml": f"server:\n  storage:\n    gcs_hmac_secret: {v}\n  database:\n    password: {v}\n"
            }
            for i, v in enumerate(values)
        }
    )
    status = drift.compute(pods, {}, sources=sources)
    assert {i.pod for i in status.items} == {"p0"}
    assert "SUPERSECRET" not in status.model_dump_json()
    assert all(str(i.actual).startswith("sha256:") for i in status.items)
