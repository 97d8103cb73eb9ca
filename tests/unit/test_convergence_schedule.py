"""The convergence check's schedule after a commit (convergence/schedule.py) and the bound on replicas asked at
once (convergence/probe.py through `schedule.gather_bounded`). No clocks: rounds and requests are counted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hubsettings_operator.conditions import Reason
from hubsettings_operator.convergence import probe, schedule
from hubsettings_operator.convergence.decide import Decision, PodProbe, Tracking, decide
from hubsettings_operator.convergence.probe import Answer, HubPod
from hubsettings_operator.spec.validation import validate_spec
from hubsettings_operator.table.replicas import ListenerView

WRITTEN = {"maintenance": 3}


def round_of(*pods: PodProbe, pending: str | None = None, now: float = 0.0, timeout: float = 75) -> Decision:
    return decide(
        WRITTEN, pods, Tracking(), now=now, timeout_s=timeout, channel="scion_ev_global", pending=pending
    )


def pod(name: str, revision: int, listening: bool | None = True, error: str | None = None) -> PodProbe:
    loaded = None if error else {"maintenance": revision}
    return PodProbe(name=name, uid=f"uid-{name}", listening=listening, loaded=loaded, error=error)


def test_rechecks_start_at_20_ms_and_double_up_to_the_fast_interval() -> None:
    delays = [schedule.recheck_delay(n, cap=1.0) for n in range(9)]
    assert delays == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0, 1.0, 1.0])


def test_a_replica_that_never_catches_up_costs_six_rounds_in_its_first_second_not_fifty() -> None:
    waited, rounds = 0.0, 0
    while waited < 1.0:
        waited += schedule.recheck_delay(rounds, cap=1.0)
        rounds += 1
    assert rounds == 6  # 20 + 40 + 80 + 160 + 320 + 640 ms; then one round per fast interval
    assert schedule.recheck_delay(10_000, cap=1.0) == 1.0  # long runs stay at the cap (no overflow)


def test_recheck_never_exceeds_a_cap_below_the_first_delay() -> None:
    assert schedule.recheck_delay(0, cap=0.01) == 0.01
    with pytest.raises(ValueError):
        schedule.recheck_delay(-1, cap=1.0)


def test_replicas_behind_with_listeners_are_held_back_only_within_the_grace() -> None:
    behind = round_of(pod("hub-0", 3), pod("hub-1", 2))
    assert behind.condition.reason is Reason.REPLICAS_BEHIND
    assert schedule.hold_back(behind, 0.05)
    assert not schedule.hold_back(behind, schedule.CATCH_UP_GRACE_S)  # still behind after the grace: written
    assert not schedule.hold_back(behind, None)  # no commit seen: every verdict is written


def test_the_operators_own_pending_write_is_held_back_within_the_grace() -> None:
    pending = round_of(pod("hub-0", 3), pending="waiting for the settings of generation 4 to be written")
    assert schedule.hold_back(pending, 0.0)


@pytest.mark.parametrize(
    "decision",
    [
        round_of(pod("hub-0", 3), pod("hub-1", 3)),  # converged: the one write a change should cost
        round_of(pod("hub-0", 3), pod("hub-1", 2, listening=False)),  # ListenerMissing: act on it
        round_of(pod("hub-0", 0, error="token rejected by the Hub (HTTP 401)")),  # TokenRejected
        round_of(
            pod("hub-0", 2), now=100.0, timeout=0.0
        ),  # overdue: its Warning Event goes out with the write
    ],
)
def test_verdicts_a_person_acts_on_or_converged_are_written_at_once(decision: Decision) -> None:
    assert not schedule.hold_back(decision, 0.0)


async def test_gather_bounded_never_runs_more_than_the_limit_and_runs_everything() -> None:
    in_flight, peak, done = 0, 0, []

    async def work(item: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)  # yield so the others can start
        await asyncio.sleep(0)
        in_flight -= 1
        done.append(item)

    await schedule.gather_bounded(range(20), work, 8)
    assert peak == 8 and sorted(done) == list(range(20))
    with pytest.raises(ValueError):
        await schedule.gather_bounded([1], work, 0)


class _Store:
    async def replica_view(self, target: Any, owner: str, channel: str, *, revisions: bool) -> Any:
        return dict(WRITTEN), ListenerView(frozenset(), complete=False)


def _spec() -> Any:
    spec, errors = validate_spec(
        {
            "database": {"secretRef": {"name": "db"}, "profile": "scion"},
            "settings": {"maintenance": {"admin_mode": False}},
            "convergence": {"adminTokenSecretRef": {"name": "admin", "key": "token"}},
        }
    )
    assert spec is not None, errors
    return spec


async def _observe(monkeypatch: pytest.MonkeyPatch, answer: Answer, n: int) -> tuple[list[str], int]:
    asked: list[str] = []
    in_flight, peak = 0, 0

    async def read_loaded(session: Any, hub: HubPod, conv: Any, token: str) -> Answer:
        nonlocal in_flight, peak
        asked.append(hub.name)
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        in_flight -= 1
        return answer

    async def no_schemas(*_: Any) -> None:
        return None

    monkeypatch.setattr(probe, "read_loaded", read_loaded)
    monkeypatch.setattr(probe, "learn_schemas", no_schemas)
    spec = _spec()
    pods = [HubPod(f"hub-{i:02}", f"uid-{i}", f"127.0.1.{i + 1}") for i in range(n)]
    _, probes, _ = await probe.observe(_Store(), spec, spec.database.profile, "owner", pods, "tok", None)  # type: ignore[arg-type]
    assert [p.name for p in probes] == [p.name for p in pods]
    return asked, peak


async def test_a_round_asks_25_replicas_at_most_8_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    asked, peak = await _observe(
        monkeypatch, Answer({"maintenance": 3}, known=frozenset({"maintenance"})), 25
    )
    assert sorted(asked) == [f"hub-{i:02}" for i in range(25)]  # each replica once
    assert peak == schedule.MAX_IN_FLIGHT == 8


async def test_a_rejected_token_ends_the_round_after_one_request(monkeypatch: pytest.MonkeyPatch) -> None:
    asked, _ = await _observe(monkeypatch, Answer(None, "token rejected by the Hub (HTTP 401)"), 25)
    assert asked == ["hub-00"]
