"""Small helpers on ObjectMeta and API time values shared by every component."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid

# Upstream's name generator: 5 characters from an alphabet without vowels and
# look-alike digits, so generated names never spell words.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    """The current time with second precision, as metav1.Time serializes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def now_rfc3339_micro() -> str:
    """metav1.MicroTime: microsecond precision (Events' eventTime, Leases)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> float | None:
    """Seconds since the epoch of an RFC3339 time, or None when unset or malformed."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def format_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def new_uid() -> str:
    return str(uuid.uuid4())


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_ALPHANUMS) for _ in range(n))


def generate_name(base: str) -> str:
    """Upstream's SimpleNameGenerator: base truncated to 58 chars plus 5 random."""
    max_base = 63 - 5
    if len(base) > max_base:
        base = base[:max_base]
    return base + random_suffix()


def split_api_version(api_version: str) -> tuple[str, str]:
    """'apps/v1' → ('apps', 'v1'); 'v1' → ('', 'v1')."""
    if "/" in api_version:
        group, _, version = api_version.partition("/")
        return group, version
    return "", api_version

