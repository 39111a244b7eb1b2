"""The pod-template-hash: a short, stable name for one version of a pod template.

Like upstream, the hash is FNV-1a (32 bit) over the template, followed by the
Deployment's collisionCount (when set) as eight little-endian bytes, so that a
collision is resolved by counting up. The 32-bit value is written in decimal
and each digit mapped through the alphabet `bcdfghjklmnpqrstvwxz2456789`
(vowels and look-alikes left out so no word can form), giving at most ten
characters drawn from `4-9` and `b c d f`, exactly as upstream's names look.

Upstream feeds FNV with Go's deep printer output of the template struct, a
format tied to Go's types; here the input is the template's canonical JSON
(keys sorted, no whitespace). The hash values therefore differ from a real
cluster's for the same template, but they have the same shape, are just as
stable, and only ever need to agree with themselves.
"""

from __future__ import annotations

from typing import Any

import orjson

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv32a(data: bytes, value: int = _FNV32_OFFSET) -> int:
    for byte in data:
        value = ((value ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """Map each character into SAFE_ALPHABET (by code point), as upstream's SafeEncodeString."""
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in text)


def compute_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    value = fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count is not None:
        value = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4), value)
    return safe_encode(str(value))
