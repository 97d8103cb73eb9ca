"""What every test tier asks of a HubSettings' status, and how it waits: one condition lookup, one poll loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def conditions(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The object's conditions by type (the last of a type wins, as the API never repeats one)."""
    return {c["type"]: dict(c) for c in (obj.get("status") or {}).get("conditions") or []}


def condition(obj: Mapping[str, Any], ctype: str) -> dict[str, Any]:
    """The condition of type `ctype`, {} when absent."""
    return conditions(obj).get(ctype, {})


def poll(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float,
    what: str,
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
    diagnostics: Callable[[], str] = lambda: "",
) -> T:
    """Call `probe` until it returns something truthy (an exception in `retry_on` counts as "not yet");
    on timeout fail naming `what`, the last answer or error, and `diagnostics()`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except retry_on as exc:
            last, result = exc, None
        else:
            last = result
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}: last={last!r}{diagnostics()}")


def retry(
    fn: Callable[[], T],
    *,
    timeout: float,
    interval: float,
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
) -> T:
    """Call `fn` until it stops raising one of `retry_on` (the last error is raised after `timeout`): for
    state that reaches the API server's caches asynchronously (RBAC, a CRD's serving)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except retry_on:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)
