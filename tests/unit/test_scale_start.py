"""What keeps a thousand objects seen at start from arriving at the API server and the databases together
(issue 24): each object's timer phase is spread over the period, and kopf's own requests are bounded in flight
(its watch streams are not). Counts and orders only; nothing here measures time."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aiohttp
import pytest
from yarl import URL

from hubsettings_operator.runtime.kube import bounded_requests
from hubsettings_operator.runtime.stagger import Stagger, phase


def test_phases_spread_over_the_period_and_are_stable_per_object() -> None:
    keys = [f"uid-{i}" for i in range(1000)]
    phases = [phase(k, 10.0) for k in keys]
    assert all(0.0 <= p < 10.0 for p in phases)
    assert phases == [phase(k, 10.0) for k in keys]  # the same object keeps its phase
    # Spread, not bunched: every tenth of the period holds some objects, none holds a fifth of them.
    buckets = [sum(1 for p in phases if b <= p < b + 1) for b in range(10)]
    assert min(buckets) > 0
    assert max(buckets) < 200


def test_only_the_first_run_of_an_object_waits_and_a_forgotten_object_waits_again() -> None:
    stagger = Stagger(10.0)
    first = stagger.first_wait("a")
    assert first == phase("a", 10.0)
    assert stagger.first_wait("a") == 0.0
    stagger.forget("a")
    assert stagger.first_wait("a") == first


class _Request:
    """What the middleware reads of aiohttp's ClientRequest: its URL."""

    def __init__(self, url: str) -> None:
        self.url = URL(url)


async def test_kopf_requests_are_bounded_in_flight_and_watch_streams_pass() -> None:
    middleware = bounded_requests(2)
    in_flight = 0
    peak = 0
    release = asyncio.Event()
    order: list[str] = []

    async def handler(request: Any) -> aiohttp.ClientResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        order.append(str(request.url))
        await release.wait()
        in_flight -= 1
        return cast(aiohttp.ClientResponse, None)

    async def call(url: str) -> None:
        await middleware(cast(aiohttp.ClientRequest, _Request(url)), handler)

    patches = [asyncio.create_task(call(f"https://api/x/{i}")) for i in range(6)]
    await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)
    assert in_flight == 2  # the other four wait for a slot
    watch = asyncio.create_task(call("https://api/x?watch=true&resourceVersion=1"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert in_flight == 3  # the watch stream did not wait behind them
    release.set()
    await asyncio.gather(*patches, watch)
    assert peak == 3
    assert [u for u in order if "watch" not in u] == [f"https://api/x/{i}" for i in range(6)]  # FIFO


@pytest.mark.parametrize("period", [1.0, 10.0, 60.0])
def test_a_phase_is_below_its_period(period: float) -> None:
    assert max(phase(f"k{i}", period) for i in range(200)) < period
