"""The `hubsettings` command line: validate, crd, docs, import, plan, apply, watch, drift, converge, run.

`main` is the click group (`cli/app.py`); importing this package registers every command on it. Exit codes:
`cli/exitcodes.py`.
"""

from hubsettings_operator.cli.app import main
from hubsettings_operator.cli.exitcodes import ExitCode

from . import converge as _converge
from . import database, drift, manifests, run

main.add_command(_converge.converge)

__all__ = ["ExitCode", "database", "drift", "main", "manifests", "run"]
