"""The `hubsettings` command line."""

from hubsettings_operator.cli.main import main

__all__ = ["main"]
