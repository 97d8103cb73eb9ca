"""The `hubsettings` command line: validate, crd, docs, import, plan, apply, watch, drift, run.

`main` is the click group (`cli/app.py`); importing this package registers every command on it. Exit codes:
`cli/exitcodes.py`.
"""

from hubsettings_operator.cli.app import main
from hubsettings_operator.cli.exitcodes import ExitCode

from . import database, drift, manifests, run

__all__ = ["ExitCode", "database", "drift", "main", "manifests", "run"]
