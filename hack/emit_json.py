"""The ending both Hub-facts generators share: build a JSON document and print it, or name the failure.

`gen_hub_facts.py` and `gen_hub_generations.py` import it as a sibling (their own folder is on `sys.path` when
they run as scripts, and the unit tests put it there when they import them).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


def emit(prog: str, build: Callable[[], Any], errors: tuple[type[Exception], ...]) -> int:
    """Print `build()` as indented JSON on stdout -> 0; one of `errors` -> its message on stderr, 1."""
    try:
        doc = build()
    except errors as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
