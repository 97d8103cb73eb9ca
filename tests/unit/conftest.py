"""Shared builders for the unit tests (pure logic, no I/O)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

BASE: dict[str, Any] = {
    "apiVersion": "scion.dev/v1alpha1",
    "kind": "HubSettings",
    "metadata": {"name": "hub", "namespace": "scion"},
    "spec": {
        "database": {"secretRef": {"name": "hub-db", "key": "url"}},
        "settings": {"access": {"admin_emails": ["ops@example.com"]}},
    },
}


@pytest.fixture
def manifest() -> dict[str, Any]:
    return copy.deepcopy(BASE)
