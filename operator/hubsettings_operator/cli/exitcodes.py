"""The exit codes of the `hubsettings` command, in one place (README and docs/cli.md list the same table).

A script can tell "nothing to do" (0) from "something to do" (2, `plan`) from "could not do what you asked"
(1, 4, 5) without parsing the output. When manifests of one run end differently, the most severe wins:
ERROR, then NOT_OWNED, then DRIFT / CHANGES. A suspended manifest is skipped and counts for nothing; only a
run whose manifests are all suspended exits SUSPENDED (nothing applied), so one still applying the others
exits as they do.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # success; `plan`: no changes; `drift`: no drift
    ERROR = 1  # invalid manifest, database or cluster error, or a manifest failed to apply
    CHANGES = 2  # `plan`: applying would change the table
    DRIFT = 3  # `drift`: a Hub pod's Layer 0 environment differs from spec.bootstrap
    NOT_OWNED = 4  # `plan` / `apply`: rows the manifest lists are owned by another HubSettings, not written
    SUSPENDED = (
        5  # `plan` / `apply`: every manifest has spec.suspend: true, so nothing was (or would be) applied
    )


SEVERITY = (ExitCode.ERROR, ExitCode.NOT_OWNED, ExitCode.DRIFT, ExitCode.CHANGES)


def worst(codes: list[ExitCode]) -> ExitCode:
    """The exit code of a run that produced `codes` (one per manifest): the most severe, OK when empty."""
    for code in SEVERITY:
        if code in codes:
            return code
    return ExitCode.OK
