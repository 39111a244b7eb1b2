"""Human-readable durations, as kubectl shows them in AGE-like columns.

Upstream formats every elapsed time in a Table cell with one function
(apimachinery's `duration.HumanDuration`): the precision shrinks as the
duration grows, so that a column stays two or three characters wide while
still telling "just now" from "a week ago". The thresholds below are client
visible and must match upstream to the unit.
"""

from __future__ import annotations

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_YEAR = 365 * _DAY


def human_duration(seconds: float) -> str:
    """Format an elapsed time; slightly negative values (clock skew) read as `0s`."""
    # int() truncates toward zero, like Go's conversion of a float duration.
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 2 * _MINUTE:
        return f"{whole}s"

    minutes = whole // _MINUTE
    if minutes < 10:
        rest = whole % _MINUTE
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 3 * 60:
        return f"{minutes}m"

    hours = whole // _HOUR
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"

    days = hours // 24
    if hours < 8 * 24:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 2 * 365 * 24:
        return f"{days}d"

    years = days // 365
    if hours < 8 * 365 * 24:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"
