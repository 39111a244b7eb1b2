"""Node IPAM: the CIDR set, then the allocator against a fake API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kubi.controllers.events import EventBroadcaster
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext
from kubi.controllers.nodeipam import CIDRRangeFull, CIDRSet, NodeIPAMController
from kubi.controllers.nodelifecycle import NODES
from tests.unit.lifecycle_fakeapi import LifecycleFakeAPI


def test_cidr_set_hands_out_in_turn_and_skips_used() -> None:
    cidrs = CIDRSet("10.42.0.0/16", 24)
    assert cidrs.size == 256
    assert cidrs.occupy("10.42.1.0/24")
    assert not cidrs.occupy("10.43.0.0/24") and not cidrs.occupy("10.42.0.0/25")
    assert [cidrs.allocate_next() for _ in range(3)] == ["10.42.0.0/24", "10.42.2.0/24",
                                                         "10.42.3.0/24"]
    cidrs.release("10.42.0.0/24")
    # Released subnets are not reused at once: allocation goes on from the last one.
    assert cidrs.allocate_next() == "10.42.4.0/24"


def test_cidr_set_wraps_and_fills() -> None:
    cidrs = CIDRSet("10.42.0.0/30", 31)
    assert [cidrs.allocate_next(), cidrs.allocate_next()] == ["10.42.0.0/31", "10.42.0.2/31"]
    with pytest.raises(CIDRRangeFull):
        cidrs.allocate_next()
    cidrs.release("10.42.0.0/31")
    assert cidrs.allocate_next() == "10.42.0.0/31"
    with pytest.raises(ValueError):
        CIDRSet("10.42.0.0/24", 16)


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_nodes_get_distinct_cidrs_released_on_deletion() -> None:
    api = LifecycleFakeAPI()
    await api.create(NODES, {"metadata": {"name": "old"},
                             "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"]}})
    informers = SharedInformers(api)  # type: ignore[arg-type]
    ctx = ControllerContext(api, informers, EventBroadcaster(api))  # type: ignore[arg-type]
    controller = NodeIPAMController(ctx)
    informers.start()
    await informers.wait_for_sync(2)
    task = asyncio.create_task(controller.run(1))
    try:
        for name in ("a", "b"):
            await api.create(NODES, {"metadata": {"name": name}, "spec": {}})

        def cidrs() -> dict[str, Any]:
            return {n["metadata"]["name"]: (n["spec"].get("podCIDR"), n["spec"].get("podCIDRs"))
                    for n in api.items("nodes")}

        await eventually(lambda: all(c[0] for c in cidrs().values()))
        assert cidrs() == {"old": ("10.42.0.0/24", ["10.42.0.0/24"]),
                           "a": ("10.42.1.0/24", ["10.42.1.0/24"]),
                           "b": ("10.42.2.0/24", ["10.42.2.0/24"])}
        await api.delete(NODES, "a")
        await eventually(lambda: "a" not in controller.allocated)
        assert len(controller.cidrs) == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await informers.stop()
