"""Addresses for simulated nodes and pods."""

from __future__ import annotations

import ipaddress

import pytest

from kubi.node.sim.ipam import IPAM, IPPool, node_address, provisional_pod_cidr


def test_pool_skips_network_gateway_and_broadcast() -> None:
    pool = IPPool("10.42.100.0/24")
    assert pool.size == 253
    got = [pool.allocate(f"pod-{i}") for i in range(253)]
    assert got[0] == "10.42.100.2" and got[-1] == "10.42.100.254"
    assert pool.allocate("one-too-many") is None


def test_pool_hands_out_in_turn_and_reuses_released_addresses_last() -> None:
    pool = IPPool("10.42.100.0/29")  # hosts .2 to .6
    a, b = pool.allocate("a"), pool.allocate("b")
    pool.release("a")
    assert pool.allocate("c") == "10.42.100.4"
    assert [pool.allocate(x) for x in ("d", "e")] == ["10.42.100.5", "10.42.100.6"]
    assert pool.allocate("f") == a
    assert b == "10.42.100.3"


def test_allocation_is_idempotent_per_owner() -> None:
    pool = IPPool("10.42.100.0/24")
    assert pool.allocate("a") == pool.allocate("a")
    assert pool.used == 1


def test_reserve_records_an_adopted_address() -> None:
    pool = IPPool("10.42.100.0/24")
    assert pool.reserve("10.42.100.2", "old")
    assert pool.allocate("new") == "10.42.100.3"
    assert not pool.reserve("10.42.100.2", "someone-else")
    assert pool.reserve("10.42.100.2", "old")
    assert not pool.reserve("10.42.101.9", "outside")
    assert not pool.reserve("not-an-ip", "x")


def test_pools_are_shared_by_cidr() -> None:
    ipam = IPAM()
    assert ipam.pool("10.42.100.0/24") is ipam.pool("10.42.100.7/24")


def test_provisional_cidrs_stay_in_the_pod_range_from_subnet_100() -> None:
    assert provisional_pod_cidr(0) == "10.42.100.0/24"
    assert provisional_pod_cidr(155) == "10.42.255.0/24"
    assert provisional_pod_cidr(156) == "10.42.100.0/24"
    pods = ipaddress.ip_network("10.42.0.0/16")
    assert all(ipaddress.ip_network(provisional_pod_cidr(i)).subnet_of(pods)
               for i in range(1000))


def test_node_addresses_come_from_kubis_own_range() -> None:
    assert node_address(0) == "10.44.0.1"
    assert node_address(253) == "10.44.0.254"
    assert node_address(254) == "10.44.0.255"
    sim = ipaddress.ip_network("10.44.0.0/16")
    addresses = {node_address(i) for i in range(2000)}
    assert len(addresses) == 2000
    assert all(ipaddress.ip_address(a) in sim for a in addresses)
    with pytest.raises(ValueError):
        node_address(10**7)
