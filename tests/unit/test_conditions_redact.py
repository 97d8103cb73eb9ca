"""Conditions (kstatus transitions) and secret redaction."""

from __future__ import annotations

import logging

import pytest

from hubsettings_operator import conditions as cond
from hubsettings_operator.conditions import CondType, Reason
from hubsettings_operator.redact import (
    REDACTED,
    describe_dsn,
    fingerprint,
    install_log_scrubber,
    register_dsn,
    scrub,
)


def test_last_transition_time_moves_only_on_status_change() -> None:
    wanted, remove = cond.success("ok")
    first = cond.merge([], wanted, generation=1, now="t1", remove=remove)
    ready = cond.get(first, CondType.READY)
    assert ready is not None and ready.lastTransitionTime == "t1"
    wanted, remove = cond.success("other message")
    second = cond.merge(first, wanted, generation=2, now="t2", remove=remove)
    ready2 = cond.get(second, CondType.READY)
    assert ready2 is not None and ready2.lastTransitionTime == "t1" and ready2.message == "other message"
    wanted, remove = cond.transient_failure(Reason.DATABASE_UNAVAILABLE, "down")
    third = cond.merge(second, wanted, generation=2, now="t3", remove=remove)
    assert cond.get(third, CondType.READY).lastTransitionTime == "t3"  # type: ignore[union-attr]
    assert cond.get(third, CondType.RECONCILING) is not None and cond.get(third, CondType.STALLED) is None


def test_stalled_and_suspended_shapes() -> None:
    wanted, remove = cond.stalled(Reason.INVALID_SPEC, "spec.x: bad")
    merged = cond.merge([], wanted, generation=1, now="t", remove=remove)
    types = {c.type: (c.status, c.reason) for c in merged}
    assert types == {
        "Ready": ("False", "InvalidSpec"),
        "Synced": ("False", "InvalidSpec"),
        "Stalled": ("True", "InvalidSpec"),
    }
    wanted, remove = cond.suspended()
    merged = cond.merge(merged, wanted, generation=1, now="t", remove=remove)
    assert {c.type for c in merged} == {"Ready", "Synced"}
    assert cond.get(merged, CondType.READY).reason == "Suspended"  # type: ignore[union-attr]


def test_other_owners_conditions_are_kept() -> None:
    drifted = cond.merge(
        [], [cond.Desired(CondType.DRIFTED, True, Reason.BOOTSTRAP_MISMATCH, "x")], generation=1, now="t"
    )
    wanted, remove = cond.success("ok")
    merged = cond.merge(drifted, wanted, generation=1, now="t", remove=remove)
    assert cond.get(merged, CondType.DRIFTED) is not None


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://hub:pa55-w0rd-xyz@db.example:5432/hub?sslmode=require",
        "host=db.example port=5432 user=hub password=pa55-w0rd-xyz dbname=hub",
        "postgres://hub:pa55%2Dw0rd%2Dxyz@db.example/hub",
    ],
)
def test_registered_dsn_and_password_are_scrubbed(dsn: str) -> None:
    register_dsn(dsn)
    text = scrub(f"connect to {dsn} failed; password pa55-w0rd-xyz rejected")
    assert "pa55-w0rd-xyz" not in text and "pa55%2Dw0rd%2Dxyz" not in text and REDACTED in text


def test_unregistered_url_password_is_scrubbed_too() -> None:
    assert "s3cret-never-seen" not in scrub("postgresql://u:s3cret-never-seen@h/db")


def test_describe_dsn_shows_no_credentials() -> None:
    assert describe_dsn("postgresql://hub:pw-123456@db.example:6543/hub") == "db.example:6543/hub"


def test_fingerprint_is_short_and_stable() -> None:
    assert fingerprint("abc") == fingerprint("abc") and fingerprint("abc").startswith("sha256:")
    assert len(fingerprint("abc")) == len("sha256:") + 12


def test_log_scrubber_covers_args_and_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    register_dsn("postgresql://hub:logged-secret-42@db/hub")
    logger = logging.getLogger("scrub-test")
    install_log_scrubber(logger)
    with caplog.at_level(logging.INFO, logger="scrub-test"):
        logger.info("dsn is %s", "postgresql://hub:logged-secret-42@db/hub")
        try:
            raise RuntimeError("boom logged-secret-42")
        except RuntimeError:
            logger.exception("failed")
    assert "logged-secret-42" not in caplog.text
