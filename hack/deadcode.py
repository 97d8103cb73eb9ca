#!/usr/bin/env python3
"""Dead-code check for `make lint`: vulture over the package, with its tests and benchmarks as users.

vulture reports every class-level name it never sees read; in this code base those are pydantic fields,
dataclass fields and enum members, which the CRD generator, kopf or the API read by name. So this check
drops "unused variable" findings (60 % confidence) and keeps the rest: functions, methods, classes,
attributes, imports, unreachable code. Names set for a framework (kopf's settings, logging records) are
listed in ALLOWED. Exit 1 with the findings, 0 when there are none.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vulture import Vulture

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "hubsettings_operator"
# Read by a framework, not by our code: kopf's OperatorSettings fields we assign, logging.LogRecord fields.
ALLOWED = {
    "finalizer",
    "progress_storage",
    "diffbase_storage",
    "lifetime",
    "mandatory",
    "clusterwide",
    "stealth",
    "server_timeout",
    "client_timeout",
    "reconnect_backoff",
    "request_timeout",
    "max_workers",
    "exc_text",
    "level",
    "disabled",  # kopf settings.scanning.disabled (--no-cluster-scanning)
}


def main() -> int:
    vulture = Vulture(ignore_decorators=["@*.command", "@click.*", "@kopf.*", "@pytest.*", "@main.*"])
    vulture.scavenge([str(PACKAGE), str(ROOT / "tests"), str(ROOT / "bench"), str(ROOT / "hack")])
    findings = [
        item
        for item in vulture.get_unused_code(min_confidence=60)
        if Path(item.filename).is_relative_to(PACKAGE)
        and item.typ != "variable"
        and item.name not in ALLOWED
        and not item.name.startswith("_")
    ]
    for item in findings:
        print(item.get_report())
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
