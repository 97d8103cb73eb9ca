"""Secret redaction (redact.py): registered and unregistered secrets scrubbed from text and logs, DSNs described
without credentials, and the DSN-from-Secret rule (secretdata.py) the operator and the CLI share."""

from __future__ import annotations

import base64
import logging

import pytest

from hubsettings_operator.errors import SecretNotFound
from hubsettings_operator.redact import (
    REDACTED,
    describe_dsn,
    fingerprint,
    install_log_scrubber,
    register_dsn,
    scrub,
)
from hubsettings_operator.secretdata import dsn_from_data


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


def test_dsn_from_secret_data_names_the_problem_never_the_value() -> None:
    dsn = "postgresql://hub:from-secret-77@db/hub"
    data = {"dsn": base64.b64encode(f"{dsn}\n".encode()).decode()}
    assert dsn_from_data(data, "ns", "db", "dsn") == dsn
    assert "from-secret-77" not in scrub(f"using {dsn}"), "registered on the way out"
    with pytest.raises(SecretNotFound, match=r"ns/db has no key 'url' \(keys: dsn\)"):
        dsn_from_data(data, "ns", "db", "url")
    with pytest.raises(SecretNotFound, match="cannot be read"):
        dsn_from_data(None, "ns", "db", "dsn")
    with pytest.raises(SecretNotFound, match="is empty"):
        dsn_from_data({"dsn": base64.b64encode(b"  ").decode()}, "ns", "db", "dsn")
