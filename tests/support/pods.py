"""Hub pod objects as the API returns them, for the drift tests (unit and CLI)."""

from __future__ import annotations

import base64
from typing import Any

DSN = "postgres://hub:s3cr3t-Passw0rd@postgres:5432/hub"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def env(**values: str) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def pod(
    name: str,
    env_list: list[dict[str, Any]] | None = None,
    *,
    container: str = "hub",
    env_from: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    extra_containers: list[dict[str, Any]] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": container, "image": "scion-hub:1"}
    if env_list is not None:
        c["env"] = env_list
    if env_from is not None:
        c["envFrom"] = env_from
    if mounts is not None:
        c["volumeMounts"] = mounts
    meta: dict[str, Any] = {"name": name, "namespace": "scion", "labels": {"app": "hub"}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"containers": [c, *(extra_containers or [])], "volumes": volumes or []},
        "status": {"phase": phase},
    }


def secret_env(secret: str = "hub-db", key: str = "url") -> list[dict[str, Any]]:
    return [
        {"name": "SCION_SERVER_DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
    ]
