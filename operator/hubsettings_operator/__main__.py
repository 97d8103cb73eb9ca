"""`python -m hubsettings_operator [args]` runs the operator (`hubsettings run [args]`)."""

import sys

from hubsettings_operator.cli import main

if __name__ == "__main__":
    main(["run", *sys.argv[1:]], prog_name="hubsettings")
