"""The reconciler against a real PostgreSQL with a body that changes while it works, as kopf's timers see it.

kopf hands timers a *live* body: every watch event replaces its content. A reconcile that read generation 1's
spec must report generation 1 even if the body says generation 2 when it finishes, and generation 2 must be
applied right after it, before the lock is given up. The store is the real one; the injected factory only
holds the first apply until the test has changed the body.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

from hubsettings_operator.runtime.reconciler import Reconciler
from hubsettings_operator.runtime.services import build_services
from hubsettings_operator.table.store import ApplyResult, PoolRegistry, SettingsStore
from tests.support.fakekube import FakeKube
from tests.support.hubdb import PROPOSAL_DDL, execute, rows


class LiveBody(Mapping[str, Any]):
    """A mapping whose whole content is replaced on each 'watch event', like kopf's live body."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self._src = raw

    def replace_with(self, raw: dict[str, Any]) -> None:
        self._src = raw

    def __getitem__(self, key: str) -> Any:
        return self._src[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._src)

    def __len__(self) -> int:
        return len(self._src)


KEY = ("scion", "hub")


def body(generation: int, value: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "scion", "name": "hub", "uid": "u-1", "generation": generation},
        "spec": {"database": {"secretRef": {"name": "db"}}, "extraSettings": {"gen.value": value}},
        "status": status or {},
    }


async def test_reconcile_reports_the_generation_it_applied_and_catches_up_with_a_newer_one(db: str) -> None:
    await execute(db, PROPOSAL_DDL)
    kube = FakeKube(default_dsn=db)
    registry = PoolRegistry()
    entered, release = asyncio.Event(), asyncio.Event()
    applies: list[str] = []

    class HeldStore(SettingsStore):
        async def apply(self, *args: Any, **kwargs: Any) -> ApplyResult:
            result = await super().apply(*args, **kwargs)
            applies.append(str(result.desired.get("gen.value")))
            if len(applies) == 1:
                entered.set()
                await release.wait()  # committed; the body changes before the status is written
            return result

    reconciler = Reconciler(
        build_services(kube, pools=registry, store_factory=lambda dsn, owner: HeldStore(dsn, registry))
    )
    try:
        kube.objects[KEY] = body(1, "one-" + secrets.token_hex(2))
        first_value = kube.objects[KEY]["spec"]["extraSettings"]["gen.value"]
        live = LiveBody(body(1, first_value))
        task = asyncio.create_task(reconciler.reconcile(live))
        await asyncio.wait_for(entered.wait(), 10)
        # The spec changes (generation 2) while generation 1's apply is in flight.
        kube.objects[KEY] = body(2, "two", status=kube.objects[KEY].get("status"))
        live.replace_with(body(2, "two", status=kube.objects[KEY].get("status")))
        release.set()
        await asyncio.wait_for(task, 10)
        ready = [
            st
            for st in kube.history
            if any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions", []))
        ]
        # Generation 1's status says generation 1; generation 2 was applied right after, in the same call.
        assert applies == [first_value, "two"]
        assert [st["observedGeneration"] for st in ready] == [1, 2]
        for st in ready:
            assert {c["observedGeneration"] for c in st["conditions"]} == {st["observedGeneration"]}
        assert kube.objects[KEY]["status"]["observedGeneration"] == 2
        assert (await rows(db, "proposal"))["gen.value"]["value"] == "two"
        # A late reconcile of the old body never applies generation 1 again.
        stale = await reconciler.reconcile(body(1, first_value, status=kube.objects[KEY]["status"]))
        assert stale.result == "stale" and applies == [first_value, "two"]
    finally:
        await reconciler.close()
