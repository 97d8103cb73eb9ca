"""Validation CPU per spec: `python -m bench.validation [--iterations N]`.

The operator validates the whole HubSettings on every reconcile, the no-op resync included, so validation is
part of the no-op CPU budget (under 1 ms per reconcile for examples/full.yaml). Cases, same run:

- baseline: a plain pydantic `HubSettingsSpec.model_validate` of full.yaml's spec (types only, no guidance);
- `validate_spec_uncached`: the whole validation of full.yaml's spec, as on a spec's first reconcile;
- `validate_spec`: the same spec again, as on every no-op resync (served from the cache by canonical JSON);
- `validate_spec_uncached` of a spec with one invalid field (the error path builds field paths and hints).

CPU time of this process (`time.process_time`), median of several rounds.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hubsettings_operator.spec.models import HubSettingsSpec
from hubsettings_operator.spec.validation import validate_spec, validate_spec_uncached

ROOT = Path(__file__).resolve().parents[1]


def _cpu_per_call(fn: Callable[[], object], iterations: int, rounds: int = 5) -> float:
    """Median over `rounds` of CPU seconds per call."""
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(iterations):
            fn()
        samples.append((time.process_time() - start) / iterations)
    return statistics.median(samples)


def measure(iterations: int) -> dict[str, float]:
    spec: dict[str, Any] = yaml.safe_load((ROOT / "examples/full.yaml").read_text())["spec"]
    invalid = copy.deepcopy(spec)
    invalid["settings"]["messaging"]["cross_project_messaging_enabled"] = "yes"
    assert validate_spec_uncached(spec)[0] is not None and validate_spec_uncached(invalid)[1]
    return {
        "HubSettingsSpec.model_validate (baseline)": _cpu_per_call(
            lambda: HubSettingsSpec.model_validate(spec), iterations
        ),
        "validate_spec_uncached full.yaml (first reconcile)": _cpu_per_call(
            lambda: validate_spec_uncached(spec), iterations
        ),
        "validate_spec full.yaml (no-op resync, cached)": _cpu_per_call(
            lambda: validate_spec(spec), iterations
        ),
        "validate_spec_uncached, 1 invalid field": _cpu_per_call(
            lambda: validate_spec_uncached(invalid), iterations
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args(argv)
    results = measure(args.iterations)
    width = max(len(k) for k in results)
    print(f"{'case':<{width}}  CPU per spec")
    for name, seconds in results.items():
        print(f"{name:<{width}}  {seconds * 1e6:8.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
