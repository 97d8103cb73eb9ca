"""The convergence decision (convergence/decide.py), the requiredForReady gate, and label selectors (selectors.py)."""

from __future__ import annotations

import pytest

from hubsettings_operator import selectors
from hubsettings_operator.conditions import CondType, Desired, Reason
from hubsettings_operator.convergence.decide import PodProbe, Tracking, decide
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.status.ready import gate_reconcile

WRITTEN = {"access": 4, "maintenance": 2}


def probe(
    name: str, loaded: dict[str, int] | None, listening: bool | None = True, error: str | None = None
) -> PodProbe:
    return PodProbe(name=name, uid=f"uid-{name}", listening=listening, loaded=loaded, error=error)


def run(pods: list[PodProbe], tracking: Tracking | None = None, now: float = 0.0, timeout: float = 75):
    return decide(
        WRITTEN, pods, tracking or Tracking(), now=now, timeout_s=timeout, channel="scion_ev_global"
    )


def test_all_loaded_is_converged_with_summary() -> None:
    d = run(
        [probe("hub-0", {"access": 4, "maintenance": 2}), probe("hub-1", {"access": 5, "maintenance": 2})]
    )
    assert d.converged and d.condition.status is True and d.condition.reason is Reason.ALL_REPLICAS_LOADED
    assert d.status.summary == "2/2"
    assert [r.behind for r in d.status.replicas] == [[], []]
    assert d.status.written == WRITTEN


def test_behind_replica_names_sections_and_warns_once_after_timeout() -> None:
    tracking = Tracking()
    pods = [probe("hub-0", {"access": 4, "maintenance": 2}), probe("hub-1", {"access": 3, "maintenance": 2})]
    first = run(pods, tracking, now=0.0)
    assert not first.converged and first.condition.reason is Reason.REPLICAS_BEHIND
    assert "hub-1 behind on access" in first.condition.message and first.status.summary == "1/2"
    assert first.overdue == []
    late = run(pods, tracking, now=80.0)
    assert late.overdue == ["hub-1"]
    again = run(pods, tracking, now=90.0)
    assert again.overdue == []  # one Event per pod and written revisions, not one per check


def test_restarted_pod_starts_a_new_clock() -> None:
    tracking = Tracking()
    run([probe("hub-1", {"access": 3})], tracking, now=0.0)
    restarted = PodProbe(name="hub-1", uid="uid-new", listening=True, loaded={"access": 3})
    d = decide(WRITTEN, [restarted], tracking, now=80.0, timeout_s=75, channel="c")
    assert d.overdue == [] and set(tracking.behind_since) == {"uid-new"}


def test_behind_without_listener_is_listener_missing() -> None:
    d = run([probe("hub-0", {"access": 4, "maintenance": 2}), probe("hub-1", {"access": 3}, listening=False)])
    assert d.condition.status is False and d.condition.reason is Reason.LISTENER_MISSING
    assert "hub-1" in d.condition.message and "poll" in d.condition.message


def test_loaded_but_listener_missing_is_converged_and_says_so() -> None:
    d = run([probe("hub-0", {"access": 4, "maintenance": 2}, listening=False)])
    assert d.converged and "no LISTEN scion_ev_global connection from hub-0" in d.condition.message
    assert d.status.replicas[0].listening is False


def test_without_token_only_listeners_are_reported() -> None:
    no_token = "no spec.convergence.adminTokenSecretRef: listener presence only"
    d = run([probe("hub-0", None, error=no_token), probe("hub-1", None, error=no_token)])
    assert (
        d.condition.status is None
        and d.condition.reason is Reason.UNKNOWN
        and no_token in d.condition.message
    )
    d = run([probe("hub-0", None, error=no_token), probe("hub-1", None, listening=False, error=no_token)])
    assert d.condition.status is False and d.condition.reason is Reason.LISTENER_MISSING


def test_rejected_token_is_its_own_reason() -> None:
    err = "token rejected by the Hub (HTTP 401): ..."
    d = run([probe("hub-0", None, error=err)])
    assert d.condition.reason is Reason.TOKEN_REJECTED and d.token_rejected and not d.converged


def test_no_pods_is_unknown() -> None:
    d = run([])
    assert d.condition.status is None and d.status.summary == "0/0"


def test_convergence_spec_defaults_and_limits() -> None:
    base = {"database": {"secretRef": {"name": "db"}}}
    spec, errors = validate_spec({**base, "convergence": {}})
    assert spec is not None and not errors and spec.convergence is not None
    assert (spec.convergence.port, spec.convergence.timeoutSeconds, spec.convergence.requiredForReady) == (
        9810,
        75,
        False,
    )
    spec, errors = validate_spec({**base, "convergence": {"scheme": "ftp"}})
    assert spec is None and any("convergence" in str(e) for e in errors)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app in (hub), tier!=agent, !canary", {"app": "hub"}, True),
        ("app in (hub), tier!=agent, !canary", {"app": "hub", "tier": "agent"}, False),
        ("app in (hub), tier!=agent, !canary", {"app": "hub", "canary": "1"}, False),
        ("app in (hub,api),tier notin (agent, batch)", {"app": "api", "tier": "web"}, True),
        ("app.kubernetes.io/name=scion-hub", {"app.kubernetes.io/name": "scion-hub"}, True),
        ("app==hub,role", {"app": "hub"}, False),
        ("", {"anything": "x"}, True),
    ],
)
def test_selector_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert selectors.matches(selectors.parse(text), labels) is expected


def test_selector_query_is_canonical_and_refuses_garbage() -> None:
    assert selectors.normalize(" app in (hub) , tier != agent,!canary") == "app in (hub),tier!=agent,!canary"
    assert selectors.normalize("app==hub") == "app=hub"
    assert selectors.normalize("app in (b,a)") == "app in (a,b)"
    for bad in ("app in ()", "app=(x)", "=x", "a b"):
        with pytest.raises(selectors.SelectorError):
            selectors.parse(bad)


def test_pending_write_claims_nothing_even_if_replicas_agree() -> None:
    """Before the current generation is written, replicas that agree with the table prove nothing."""
    pods = [probe("hub-0", {"access": 4, "maintenance": 2})]
    d = decide(
        WRITTEN, pods, Tracking(), now=0.0, timeout_s=75, channel="c", pending="waiting for generation 3"
    )
    assert d.condition.status is None and not d.converged and "generation 3" in d.condition.message


@pytest.mark.parametrize(
    ("narrow", "wide", "inside"),
    [
        ("app=hub,tier notin (agent),!canary", "app in (hub), tier!=agent, !canary", True),
        ("app=hub", "app in (hub), tier!=agent, !canary", False),  # would take agent pods the watch drops
        ("app=hub,tier=web", "app in (hub,api),tier!=agent", True),
        ("app=web", "app=hub", False),
        ("app in (hub,web)", "app=hub", False),
        ("app=hub", "app", True),
        ("", "app=hub", False),
        ("app=hub", "", True),
    ],
)
def test_selector_implies(narrow: str, wide: str, inside: bool) -> None:
    assert selectors.implies(selectors.parse(narrow), selectors.parse(wide)) is inside


# ---- what a real Hub answers (issue 25) ---------------------------------------------------------------------


def test_a_section_the_replica_does_not_know_is_not_behind_and_says_what_to_do() -> None:
    """An older replica lists the sections of its own registry only: `maintenance` is missing from it."""
    old = PodProbe(
        name="hub-old",
        uid="uid-old",
        listening=True,
        loaded={"access": 4},
        known=frozenset({"access", "lifecycle"}),
        version="0.2.4",
    )
    new = PodProbe(
        name="hub-new",
        uid="uid-new",
        listening=True,
        loaded={"access": 4, "maintenance": 2},
        known=frozenset({"access", "maintenance"}),
        version="0.2.22",
    )
    d = run([old, new])
    by_name = {r.name: r for r in d.status.replicas}
    assert by_name["hub-old"].behind == [] and by_name["hub-old"].unknownSections == ["maintenance"]
    assert by_name["hub-old"].version == "0.2.4" and by_name["hub-new"].unknownSections == []
    assert d.behind == [] and not d.converged
    assert d.condition.status is False and d.condition.reason is Reason.SECTIONS_UNKNOWN_TO_REPLICA
    message = d.condition.message
    assert "hub-old (scion 0.2.4) does not know maintenance" in message
    assert "Upgrade the replica" in message and "drop it from spec.settings" in message
    assert d.status.oldestVersion == "0.2.4"
    # requiredForReady carries the same reason and guidance to Ready.
    body = {
        "spec": {"convergence": {"requiredForReady": True}},
        "status": {
            "conditions": [
                {
                    "type": "Converged",
                    "status": "False",
                    "reason": d.condition.reason.value,
                    "message": message,
                }
            ]
        },
    }
    wanted, _ = gate_reconcile(
        ([Desired(CondType.READY, True, Reason.SYNCED, "ok")], []), body, changed=False
    )
    assert wanted[0].status is False and wanted[0].reason is Reason.SECTIONS_UNKNOWN_TO_REPLICA
    assert "Upgrade the replica" in wanted[0].message


def test_unknown_section_and_a_replica_behind_on_a_known_one() -> None:
    old = PodProbe(
        name="hub-old",
        uid="u",
        listening=True,
        loaded={"access": 3},
        known=frozenset({"access"}),
        version="0.2.4",
    )
    d = run([old])
    assert d.behind == ["hub-old"] and d.status.replicas[0].behind == ["access"]
    assert d.condition.reason is Reason.SECTIONS_UNKNOWN_TO_REPLICA  # the user must act: said first


def test_403_is_token_forbidden_and_401_token_rejected() -> None:
    forbidden = "token forbidden by the Hub (HTTP 403 'Insufficient permissions'): ... hub.config.read ..."
    d = run([probe("hub-0", None, error=forbidden)])
    assert d.condition.reason is Reason.TOKEN_FORBIDDEN and d.token_rejected and d.condition.status is None
    assert "hub.config.read" in d.condition.message
    rejected = "token rejected by the Hub (HTTP 401 'invalid access token'): ..."
    assert run([probe("hub-0", None, error=rejected)]).condition.reason is Reason.TOKEN_REJECTED


def test_oldest_version_is_the_spec_rule() -> None:
    """status.convergence.oldestVersion follows spec.versions.effective_hub_version (one rule): oldest
    parseable version, without its "v"; unparseable and missing versions do not count."""
    pods = [
        PodProbe(name=n, uid=n, listening=True, loaded={}, version=v)
        for n, v in (("a", "0.2.10"), ("b", "v0.2.9"), ("c", None), ("d", "dev"))
    ]
    assert decide({}, pods, Tracking(), now=0.0, timeout_s=30.0, channel="c").status.oldestVersion == "0.2.9"
    assert decide({}, [], Tracking(), now=0.0, timeout_s=30.0, channel="c").status.oldestVersion is None


def test_server_config_answer_as_the_hub_sends_it() -> None:
    """Omitted empty fields (no revision for `default`/`file`), every registry section, the version."""
    from hubsettings_operator.convergence.probe import parse_server_config

    answer = parse_server_config(
        {
            "scion_version": "0.2.4",
            "settings_tier": "db",
            "schema_version": "1",
            "section_metadata": {
                "access": {"source": "default"},
                "lifecycle": {"source": "file"},
                "maintenance": {
                    "source": "db",
                    "revision": 7,
                    "updated_at": "2026-01-01T00:00:00Z",
                    "updated_by": "ops@example.com",
                    "origin": "managed",
                },
            },
        }
    )
    assert answer.loaded == {"maintenance": 7} and answer.error is None
    assert answer.known == {"access", "lifecycle", "maintenance"} and answer.version == "0.2.4"
    assert parse_server_config({"schema_version": "1"}).loaded is None


def test_a_replica_missing_a_section_does_not_count_as_loaded() -> None:
    old = PodProbe(
        name="o", uid="o", listening=True, loaded={"access": 4}, known=frozenset({"access"}), version="0.2.4"
    )
    new = PodProbe(
        name="n", uid="n", listening=True, loaded=dict(WRITTEN), known=frozenset(WRITTEN), version="0.3.0"
    )
    assert run([old, new]).status.summary == "1/2"
