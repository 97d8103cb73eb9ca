"""`--shard-selector` (issue 24): normalised for the API server, refused before start when it does not parse,
empty by default (every HubSettings)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hubsettings_operator.cli import main
from hubsettings_operator.runtime.config import OperatorConfig


def test_default_is_every_hubsettings() -> None:
    assert OperatorConfig().shard_watch_selector == ""


def test_a_shard_selector_is_normalised_for_the_api_server() -> None:
    config = OperatorConfig(shard_selector="hubsettings.scion.dev/shard in (a, b)")
    assert config.shard_watch_selector == "hubsettings.scion.dev/shard in (a,b)"


@pytest.mark.parametrize("bad", ["shard in (a", "=a", "bad key!=x"])
def test_a_bad_shard_selector_is_refused_before_the_operator_starts(bad: str) -> None:
    with pytest.raises(ValueError, match="--shard-selector"):
        _ = OperatorConfig(shard_selector=bad).shard_watch_selector
    result = CliRunner().invoke(main, ["run", "--namespace", "x", "--shard-selector", bad])
    assert result.exit_code == 2
    assert "--shard-selector" in result.output
