"""kopf's readiness toggle set with one shared wait per state (runtime/toggles.py): the same meaning as kopf's
(waiters return once every toggle is dropped or on), with one waiter on the condition instead of one per pod."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from kopf._cogs.aiokits import aiotoggles

from hubsettings_operator.runtime import toggles
from hubsettings_operator.runtime.toggles import SharedWaitToggleSet


def _condition_waiters(toggle_set: aiotoggles.ToggleSet) -> int:
    waiters = toggle_set._condition._waiters
    return len(waiters) if waiters else 0


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_many_waiters_share_one_condition_wait_and_return_after_the_last_drop() -> None:
    toggle_set = SharedWaitToggleSet(all)
    pods = [await toggle_set.make_toggle(name=f"pod-{i}") for i in range(50)]
    done: list[int] = []

    async def worker(i: int) -> None:
        await toggle_set.drop_toggle(pods[i])
        await toggle_set.wait_for(True)
        done.append(i)

    tasks = [asyncio.create_task(worker(i)) for i in range(49)]
    await _settle()
    assert done == [] and not toggle_set.is_on()
    assert _condition_waiters(toggle_set) == 1  # kopf's own class: 49, each woken by every drop
    await toggle_set.drop_toggle(pods[49])
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert sorted(done) == list(range(49))


async def test_kopfs_own_set_has_a_condition_waiter_per_caller() -> None:
    """The baseline the shared wait removes (so the test above can tell the two apart)."""
    toggle_set = aiotoggles.ToggleSet(all)
    blocker = await toggle_set.make_toggle()
    tasks = [asyncio.create_task(toggle_set.wait_for(True)) for _ in range(10)]
    await _settle()
    assert _condition_waiters(toggle_set) == 10
    await toggle_set.drop_toggle(blocker)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    toggle_set = SharedWaitToggleSet(all)
    blocker = await toggle_set.make_toggle()
    first = asyncio.create_task(toggle_set.wait_for(True))
    second = asyncio.create_task(toggle_set.wait_for(True))
    await _settle()
    first.cancel()
    await _settle()
    assert first.cancelled() and not second.done()
    await toggle_set.drop_toggle(blocker)
    await asyncio.wait_for(second, 5)


async def test_a_set_already_in_the_state_returns_at_once_and_both_states_can_be_awaited() -> None:
    """kopf's pause set (`any`): toggles turned on and off by peering; wait for off, then for on."""
    paused = SharedWaitToggleSet(any)
    await paused.wait_for(False)  # no toggles: off
    toggle = await paused.make_toggle(False)
    on = asyncio.create_task(paused.wait_for(True))
    await _settle()
    assert not on.done()
    await toggle.turn_to(True)
    await asyncio.wait_for(on, 5)
    off = asyncio.create_task(paused.wait_for(False))
    await _settle()
    assert not off.done()
    await toggle.turn_to(False)
    await asyncio.wait_for(off, 5)


@pytest.fixture
def kopf_toggle_class() -> Iterator[None]:
    original = aiotoggles.ToggleSet
    yield
    aiotoggles.ToggleSet = original  # type: ignore[misc]


@pytest.mark.usefixtures("kopf_toggle_class")
def test_install_makes_kopf_build_the_shared_set() -> None:
    assert toggles.install() is True
    assert isinstance(aiotoggles.ToggleSet(all), SharedWaitToggleSet)
    assert toggles.install() is True  # twice: still one class


@pytest.mark.usefixtures("kopf_toggle_class")
def test_install_leaves_a_kopf_of_another_shape_alone() -> None:
    class Other:  # a future kopf whose toggle set no longer has wait_for
        pass

    aiotoggles.ToggleSet = Other  # type: ignore[misc, assignment]
    assert toggles.install() is False
    assert aiotoggles.ToggleSet is Other  # type: ignore[comparison-overlap]
