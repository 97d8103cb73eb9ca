"""The convergence probe asks each Hub version's schema endpoint once (convergence/probe.py `learn_schemas`),
against a small HTTP server on loopback answering as the Hub's handler does (200 with `sections`, or 404 for a
Hub before the endpoint)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from hubsettings_operator.convergence.probe import Answer, HubPod, learn_schemas
from hubsettings_operator.spec import live_schema
from hubsettings_operator.spec.live_schema import SCHEMA_PATH
from hubsettings_operator.spec.models import ConvergenceSpec

TOKEN = "scion_pat_probe-schema-test"
SECTIONS = {"maintenance": {"schema": {"type": "object"}, "koanf_paths": ["server.maintenance"]}}


@pytest.fixture
async def hub() -> AsyncIterator[tuple[int, dict[str, int]]]:
    """(port, requests per answer kind); the 404 is served while `calls["serve"]` is 0."""
    calls = {"schema": 0, "serve": 1}

    async def schema(request: web.Request) -> web.Response:
        calls["schema"] += 1
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        if not calls["serve"]:
            return web.json_response({"error": {"code": "not_found"}}, status=404)
        return web.json_response({"sections": SECTIONS})

    app = web.Application()
    app.router.add_get(SCHEMA_PATH, schema)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, calls
    finally:
        await runner.cleanup()


async def test_schema_fetched_once_per_version_and_cached(hub: tuple[int, dict[str, int]]) -> None:
    port, calls = hub
    conv = ConvergenceSpec.model_validate({"port": port})
    pods = [HubPod("hub-0", "u0", "127.0.0.1"), HubPod("hub-1", "u1", "127.0.0.1")]
    answers = {"u0": Answer({}, version="31.0.1"), "u1": Answer({}, version="31.0.1")}
    async with aiohttp.ClientSession() as session:
        await learn_schemas(session, pods, answers, conv, TOKEN)
        await learn_schemas(session, pods, answers, conv, TOKEN)
    assert calls["schema"] == 1  # two replicas, two rounds: one request for the version
    cached = live_schema.cached("31.0.1")
    assert cached is not None and set(cached.schemas) == {"maintenance"}
    assert cached.koanf_paths["maintenance"] == ("server.maintenance",)


async def test_a_hub_without_the_endpoint_is_not_asked_again(hub: tuple[int, dict[str, int]]) -> None:
    port, calls = hub
    calls["serve"] = 0
    conv = ConvergenceSpec.model_validate({"port": port})
    pods = [HubPod("hub-0", "u0", "127.0.0.1")]
    answers = {"u0": Answer({}, version="31.0.2")}
    async with aiohttp.ClientSession() as session:
        await learn_schemas(session, pods, answers, conv, TOKEN)
        await learn_schemas(session, pods, answers, conv, TOKEN)
    assert calls["schema"] == 1 and live_schema.cached("31.0.2") is None
    # A replica that did not answer server-config (an error) is not asked for its schema.
    failed = {"u0": Answer(None, "unreachable (ClientError)", version="31.0.3")}
    async with aiohttp.ClientSession() as session:
        await learn_schemas(session, pods, failed, conv, TOKEN)
    assert calls["schema"] == 1
