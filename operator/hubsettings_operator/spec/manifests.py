"""Reading HubSettings manifests from multi-document YAML files (or stdin) for the CLI."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hubsettings_operator.spec.live_schema import LiveSchemas
from hubsettings_operator.spec.models import GROUP
from hubsettings_operator.spec.validation import FieldError, Report, validate_object


@dataclass
class Document:
    source: str  # file:index, for messages
    body: Any


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (which would silently drop a setting)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(paths: Iterable[str]) -> tuple[list[Document], list[Report]]:
    """All YAML documents of the given files ('-' is stdin). Unreadable files become error reports."""
    docs: list[Document] = []
    failures: list[Report] = []
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
            bodies = list(yaml.load_all(text, Loader=_UniqueKeyLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            report = Report(source=path)
            report.errors.append(FieldError("(file)", f"cannot read: {str(exc).splitlines()[0]}"))
            failures.append(report)
            continue
        for index, body in enumerate(bodies):
            if body is None:
                continue
            docs.append(Document(f"{path}#{index}" if len(bodies) > 1 else path, body))
    return docs, failures


def is_hubsettings(body: Any) -> bool:
    return isinstance(body, dict) and str(body.get("apiVersion", "")).startswith(GROUP + "/")


def validate_paths(
    paths: Iterable[str], *, hub_version: str | None = None, live: LiveSchemas | None = None
) -> tuple[list[Report], int]:
    """Validate every HubSettings document in the files (against the running Hub's version and schemas when
    given). -> (reports, documents skipped as other kinds)."""
    docs, reports = load_documents(paths)
    skipped = 0
    for doc in docs:
        if not is_hubsettings(doc.body):
            skipped += 1
            continue
        reports.append(validate_object(doc.body, doc.source, hub_version=hub_version, live=live))
    return reports, skipped
