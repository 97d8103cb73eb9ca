"""hubsettings-operator: declarative Layer 1 settings and Layer 0 drift detection for the Scion Hub."""

__version__ = "0.1.0"
