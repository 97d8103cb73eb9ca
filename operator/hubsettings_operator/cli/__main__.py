"""`python -m hubsettings_operator.cli [args]` is the `hubsettings` command."""

from hubsettings_operator.cli import main

if __name__ == "__main__":
    main(prog_name="hubsettings")
