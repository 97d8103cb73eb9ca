"""The table layout registry: which layouts exist, which one a profile or a table's columns name.

A layout is found by its profile: `Profile.X` (spec/models.py, the CRD's enum of profiles) is implemented by
the module `table/<x>.py`, which exports `LAYOUT` (a `TableLayout`, table/layout.py). So a new layout is that
module plus its line in `Profile`; nothing else here or elsewhere names a layout. `detect` tells the layout
from a table's columns (the one place a profile is chosen from the database), in the order of `Profile`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import cache

from hubsettings_operator.errors import SchemaMismatch
from hubsettings_operator.spec.models import HubSettingsSpec, Profile
from hubsettings_operator.table.layout import TableInfo, TableLayout
from hubsettings_operator.table.plan import JSONValue


def all_layouts() -> tuple[TableLayout, ...]:
    """Every supported layout, in detection order (the order of `Profile`)."""
    return tuple(_load(p) for p in Profile if p is not Profile.AUTO)


def names() -> tuple[str, ...]:
    """The concrete profile names (the CLI's --profile choices)."""
    return tuple(layout.profile.value for layout in all_layouts())


@cache
def _load(profile: Profile) -> TableLayout:
    module = importlib.import_module(f"{__package__}.{profile.value}")
    layout: TableLayout = module.LAYOUT
    if layout.profile is not profile:
        raise RuntimeError(f"table/{profile.value}.py: LAYOUT.profile is {layout.profile}, not {profile}")
    return layout


def layout_for(profile: Profile) -> TableLayout:
    """The layout of a concrete profile."""
    if profile is Profile.AUTO:
        raise ValueError(f"a concrete profile is needed ({' or '.join(names())}); detect() the table's first")
    return _load(profile)


def creatable_layout() -> TableLayout:
    """The layout the operator creates a missing table with (spec.database.createTable)."""
    return next(layout for layout in all_layouts() if layout.creatable)


def desired_rows(spec: HubSettingsSpec, profile: Profile) -> dict[str, JSONValue]:
    """Rows the spec wants under a concrete profile."""
    return layout_for(profile).desired_rows(spec)


def detect(columns: Iterable[str] | None, *, create_table: bool, table: str) -> TableLayout:
    """The layout a table's columns say; `None` columns means the table does not exist."""
    if columns is None:
        if create_table:
            return creatable_layout()
        raise SchemaMismatch(
            f"table {table} does not exist: the shipped Hub creates it through its migrations (start the Hub "
            "once), or set spec.database.createTable: true with profile proposal"
        )
    cols = set(columns)
    layouts = all_layouts()
    for layout in layouts:
        if cols >= layout.columns:
            return layout
    expected = " nor ".join(f"{lay.profile.value}'s {sorted(lay.columns)}" for lay in layouts)
    raise SchemaMismatch(
        f"table {table} has columns {sorted(cols)}, which match neither {expected}; is this an older fork's "
        "table? Point spec.database.table at the Hub's settings table"
    )


def resolve(profile: Profile, info: TableInfo | None, *, create_table: bool, table: str) -> TableLayout:
    """The layout for a target: detected under `auto`, checked against the table's columns when forced, and
    refused when the row key has no unique index (concurrent inserts would then duplicate rows)."""
    columns = info.columns if info is not None else None
    if profile is Profile.AUTO:
        layout = detect(columns, create_table=create_table, table=table)
    else:
        layout = layout_for(profile)
        if info is None and not (create_table and layout.creatable):
            raise SchemaMismatch(f"table {table} does not exist: {layout.missing_table_hint()}")
        missing = layout.columns - set(columns or layout.columns)
        if missing:
            raise SchemaMismatch(
                f"table {table} lacks columns {sorted(missing)} required by profile {profile.value}; "
                "use profile auto or point spec.database.table at the Hub's settings table"
            )
    if info is not None and layout.key_column not in info.unique_columns:
        index = f"{info.qualified.rsplit('.', 1)[-1]}_{layout.key_column}_key"
        raise SchemaMismatch(
            f"table {table} has no unique index on {layout.key_column}: concurrent writers could duplicate rows. "
            f"Add it (the Hub's migration creates it): CREATE UNIQUE INDEX {index} ON {info.qualified} "
            f"({layout.key_column})"
        )
    return layout
