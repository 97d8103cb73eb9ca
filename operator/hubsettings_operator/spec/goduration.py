"""Go's `time.ParseDuration`, line by line, so the operator accepts exactly the duration strings the Hub parses.

Grammar: `[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+` or `[-+]?0`, units ns, us, µs (U+00B5), μs (U+03BC), ms, s, m, h,
at least one digit before or after the dot of each part, and the total within an int64 of nanoseconds
(about 292 years). Pure.
"""

from __future__ import annotations

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # µs, micro sign
    "\u03bcs": 1_000,  # μs, Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX = 1 << 63


def _leading_int(s: str) -> tuple[int, str] | None:
    x, i = 0, 0
    while i < len(s) and "0" <= s[i] <= "9":
        if x > _MAX // 10:
            return None  # overflow
        x = x * 10 + ord(s[i]) - 48
        if x > _MAX:
            return None
        i += 1
    return x, s[i:]


def _leading_fraction(s: str) -> tuple[int, float, str]:
    x, scale, i, overflow = 0, 1.0, 0, False
    while i < len(s) and "0" <= s[i] <= "9":
        if not overflow:
            if x > (_MAX - 1) // 10:
                overflow = True
            else:
                y = x * 10 + ord(s[i]) - 48
                if y > _MAX:
                    overflow = True
                else:
                    x, scale = y, scale * 10
        i += 1
    return x, scale, s[i:]


def parse_duration(text: str) -> int | None:
    """Nanoseconds, or None where Go's time.ParseDuration returns an error."""
    s, neg, total = text, False, 0
    if s and s[0] in "-+":
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            return None
        before = len(s)
        lead = _leading_int(s)
        if lead is None:
            return None
        v, s = lead
        pre = before != len(s)
        f, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            before = len(s)
            f, scale, s = _leading_fraction(s)
            post = before != len(s)
        if not pre and not post:
            return None
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        unit = _UNITS.get(s[:i])
        if unit is None:
            return None  # missing or unknown unit
        s = s[i:]
        if v > _MAX // unit:
            return None
        v *= unit
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
            if v > _MAX:
                return None
        total += v
        if total > _MAX:
            return None
    if neg:
        return -total
    if total > _MAX - 1:
        return None
    return total


def is_go_duration(text: str) -> bool:
    """True when the Hub's time.ParseDuration accepts `text`."""
    return parse_duration(text) is not None
