"""The generated facts about the Hub (`data/hub_facts.json`, written by hack/gen_hub_facts.py and
hack/gen_hub_generations.py), loaded once, and the Hub generations they describe. Pure (reads package data)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any


@cache
def facts() -> dict[str, Any]:
    """The whole fact table."""
    text = resources.files("hubsettings_operator").joinpath("data/hub_facts.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def generations() -> list[dict[str, Any]]:
    """The Hub generations, oldest first (each: id, since, source, sections, layer0_prefixes, ...)."""
    found: list[dict[str, Any]] = facts()["generations"]
    return found


def newest() -> dict[str, Any]:
    """The newest generation (the catalog, the CRD and the docs follow it)."""
    return generations()[-1]


def section_facts(generation: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Section name -> {name, koanf_paths, schema, go_types} of one generation."""
    return {s["name"]: s for s in generation["sections"]}
