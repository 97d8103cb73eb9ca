"""`StatusWriter.write_over`: the write of a caller that read the object itself under the object's lock (the
convergence check right after a commit) merges over that read and sends no second GET; `write` still re-reads."""

from __future__ import annotations

from typing import Any

from hubsettings_operator.runtime.status_writer import StatusWriter
from hubsettings_operator.status.rules import StatusUpdate
from tests.support.fakekube import FakeKube


class CountingKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def get_hubsettings(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets += 1
        return await super().get_hubsettings(namespace, name)


async def test_write_over_merges_over_the_callers_read_without_reading_again() -> None:
    kube = CountingKube()
    kube.put("ns", "hub", {})
    kube.objects[("ns", "hub")]["status"] = {"other": "kept"}
    writer = StatusWriter(kube)
    fresh = await kube.get_hubsettings("ns", "hub")
    assert fresh is not None
    async with writer.lock_for(fresh):
        written = await writer.write_over(fresh, StatusUpdate(fields={"convergence": {"summary": "3/3"}}))
    assert kube.gets == 1 and kube.patches == 1
    assert written.patch == {"convergence": {"summary": "3/3"}}
    assert kube.objects[("ns", "hub")]["status"] == {"other": "kept", "convergence": {"summary": "3/3"}}
    async with writer.lock_for(fresh):  # the same again: nothing differs, nothing sent
        again = await writer.write_over(
            await kube.get_hubsettings("ns", "hub") or {},
            StatusUpdate(fields={"convergence": {"summary": "3/3"}}),
        )
    assert again.patch == {} and kube.patches == 1


async def test_write_still_reads_the_object_before_it_patches() -> None:
    kube = CountingKube()
    stale = kube.put("ns", "hub", {})
    writer = StatusWriter(kube)
    async with writer.lock_for(stale):
        await writer.write(stale, StatusUpdate(fields={"convergence": {"summary": "1/1"}}))
    assert kube.gets == 1 and kube.patches == 1
