"""The table layout registry (table/layouts.py): every concrete profile has its module, and the layout
questions other layers ask are answered by the layout, not by a branch on the profile."""

from __future__ import annotations

import pytest

from hubsettings_operator.spec.models import Profile
from hubsettings_operator.table import layouts


def test_every_concrete_profile_has_a_layout_module_in_detection_order() -> None:
    concrete = [p for p in Profile if p is not Profile.AUTO]
    assert [layout.profile for layout in layouts.all_layouts()] == concrete
    assert layouts.names() == tuple(p.value for p in concrete)


def test_auto_is_not_a_layout() -> None:
    with pytest.raises(ValueError, match="a concrete profile is needed"):
        layouts.layout_for(Profile.AUTO)


@pytest.mark.parametrize(
    ("profile", "replica_endpoint", "env_overrides_table", "creatable"),
    [(Profile.SCION, True, False, False), (Profile.PROPOSAL, False, True, True)],
)
def test_layouts_answer_their_own_questions(
    profile: Profile, replica_endpoint: bool, env_overrides_table: bool, creatable: bool
) -> None:
    layout = layouts.layout_for(profile)
    assert (layout.replica_endpoint, layout.env_overrides_table, layout.creatable) == (
        replica_endpoint,
        env_overrides_table,
        creatable,
    )
    assert layouts.creatable_layout().creatable
