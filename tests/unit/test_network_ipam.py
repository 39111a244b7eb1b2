"""Pod address management: allocation order, persistence, exhaustion."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubi.node.network.ipam import AddressesExhausted, Ipam, gateway_address, next_free


def test_gateway_is_the_first_host() -> None:
    assert gateway_address("10.42.3.0/24") == "10.42.3.1"


def test_next_free_skips_gateway_and_continues_after_last() -> None:
    assert next_free("10.42.0.0/24", set(), None) == "10.42.0.2"
    assert next_free("10.42.0.0/24", {"10.42.0.2"}, None) == "10.42.0.3"
    assert next_free("10.42.0.0/24", set(), "10.42.0.7") == "10.42.0.8"
    # Wraps around past the end of the range, never handing out broadcast.
    assert next_free("10.42.0.0/24", set(), "10.42.0.254") == "10.42.0.2"


def test_next_free_exhaustion() -> None:
    taken = {"10.42.0.2"}
    with pytest.raises(AddressesExhausted):
        next_free("10.42.0.0/30", taken, None)
    with pytest.raises(AddressesExhausted):
        next_free("10.42.0.0/31", set(), None)


def test_ipam_persists_and_is_idempotent(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", "10.42.9.0/24")
    a = ipam.allocate("sandbox-a")
    assert a == "10.42.9.2"
    assert ipam.allocate("sandbox-a") == a
    b = ipam.allocate("sandbox-b")
    again = Ipam(tmp_path / "ipam.json", "10.42.9.0/24")
    assert again.allocations() == {"sandbox-a": a, "sandbox-b": b}
    assert again.release("sandbox-a") == a
    assert again.release("sandbox-a") is None
    # A released address is not reused right away.
    assert again.allocate("sandbox-c") == "10.42.9.4"
    again.remove()
    assert not (tmp_path / "ipam.json").exists()
