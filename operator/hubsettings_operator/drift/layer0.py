"""Layer 0 drift: which Hub pods' bootstrap settings disagree with the HubSettings or with each other. Pure.

The names callers use, gathered from the modules that do each job:
- `env.py`: env resolution (env, envFrom, ConfigMap/Secret references), `normalize`, `Sources`, `Value`,
  `referenced_sources` (what to read), `secret_text`;
- `settings_yaml.py`: values from a mounted settings.yaml;
- `container.py`: one container's Layer 0 view (`container_view`);
- `compare.py`: comparison with spec.bootstrap.expected and between peers (`compute` -> `DriftStatus`);
- `sources.py`: async gathering of pods' sources for the operator and the CLI;
- label selectors: `selectors.py` (`label_selector`, `matches_selector` here take the CRD's LabelSelector).

Secret-valued keys never leave in clear: they are compared and reported as `sha256:` fingerprints.
"""

from __future__ import annotations

from hubsettings_operator.drift.compare import compute
from hubsettings_operator.drift.container import ContainerView, container_view
from hubsettings_operator.drift.env import (
    DEFAULT_CAP,
    FINGERPRINT_PREFIX,
    MIN_FINGERPRINT_HEX,
    SETTINGS_FILE,
    UNSET,
    Sources,
    Value,
    label_selector,
    matches_selector,
    normalize,
    referenced_sources,
    secret_text,
)

__all__ = [
    "DEFAULT_CAP",
    "FINGERPRINT_PREFIX",
    "MIN_FINGERPRINT_HEX",
    "SETTINGS_FILE",
    "UNSET",
    "ContainerView",
    "Sources",
    "Value",
    "compute",
    "container_view",
    "label_selector",
    "matches_selector",
    "normalize",
    "referenced_sources",
    "secret_text",
]
