"""Leader election on a Lease: acquire, renew, hand over, lose, race."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.controllers.leader import LEASES, LeaderElector
from tests.unit.controllers_fakeapi import FakeAPI

MICRO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def elector(api: FakeAPI, identity: str, **kw: Any) -> LeaderElector:
    options = {"lease_duration": 1.0, "renew_deadline": 0.5, "retry_period": 0.1, **kw}
    return LeaderElector(api, name="kube-controller-manager",  # type: ignore[arg-type]
                         identity=identity, **options)


async def lead_forever(log: list[str], name: str) -> None:
    log.append(f"{name} started")
    try:
        await asyncio.Event().wait()
    finally:
        log.append(f"{name} stopped")


def lease(api: FakeAPI) -> dict[str, Any]:
    return api.objects[("leases", "kube-system", "kube-controller-manager")]


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_durations_must_nest() -> None:
    with pytest.raises(ValueError):
        LeaderElector(FakeAPI(), name="x", identity="a",  # type: ignore[arg-type]
                      lease_duration=10, renew_deadline=10, retry_period=2)


async def test_first_candidate_creates_the_lease_and_leads() -> None:
    api = FakeAPI()
    log: list[str] = []
    a = elector(api, "a")
    task = asyncio.create_task(a.run(lambda: lead_forever(log, "a")))
    await asyncio.wait_for(a.leading.wait(), 2)
    spec = lease(api)["spec"]
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 0
    assert MICRO.fullmatch(spec["acquireTime"]) and MICRO.fullmatch(spec["renewTime"])
    assert a.is_leader
    first_renew = spec["renewTime"]
    await wait_for(lambda: lease(api)["spec"]["renewTime"] != first_renew)
    assert lease(api)["spec"]["acquireTime"] == spec["acquireTime"]
    await stop(task)
    assert log == ["a started", "a stopped"]


async def test_second_candidate_waits_then_takes_over_a_released_lease() -> None:
    api = FakeAPI()
    log: list[str] = []
    leaders: list[str] = []
    a = elector(api, "a")
    b = elector(api, "b", on_new_leader=leaders.append)
    task_a = asyncio.create_task(a.run(lambda: lead_forever(log, "a")))
    await asyncio.wait_for(a.leading.wait(), 2)
    task_b = asyncio.create_task(b.run(lambda: lead_forever(log, "b")))
    await asyncio.sleep(0.4)
    assert not b.leading.is_set()
    assert leaders == ["a"]
    await stop(task_a)
    assert lease(api)["spec"]["holderIdentity"] == ""  # released on a clean stop
    await asyncio.wait_for(b.leading.wait(), 2)
    assert lease(api)["spec"]["holderIdentity"] == "b"
    assert lease(api)["spec"]["leaseTransitions"] == 1
    assert leaders[-1] == "b"
    await stop(task_b)
    assert log == ["a started", "a stopped", "b started", "b stopped"]


async def test_an_unrenewed_lease_is_taken_after_it_expires() -> None:
    api = FakeAPI()
    a = elector(api, "a", release_on_cancel=False)
    b = elector(api, "b")
    task_a = asyncio.create_task(a.run(lambda: asyncio.Event().wait()))
    await asyncio.wait_for(a.leading.wait(), 2)
    await stop(task_a)  # dies without releasing
    loop = asyncio.get_running_loop()
    started = loop.time()
    task_b = asyncio.create_task(b.run(lambda: asyncio.Event().wait()))
    await asyncio.wait_for(b.leading.wait(), 3)
    # b had to watch the record stay unchanged for a whole lease duration.
    assert loop.time() - started >= 0.9
    assert lease(api)["spec"]["leaseTransitions"] == 1
    await stop(task_b)


async def test_losing_the_lease_stops_the_leader() -> None:
    api = FakeAPI()
    log: list[str] = []
    a = elector(api, "a")
    task = asyncio.create_task(a.run(lambda: lead_forever(log, "a")))
    await asyncio.wait_for(a.leading.wait(), 2)

    def partition(verb: str, res: Resource, obj: dict[str, Any] | None) -> Exception | None:
        return ConnectionRefusedError("partitioned") if res.plural == "leases" else None

    api.fail(partition)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(task, 3)  # run returns once renewals fail for the deadline
    assert loop.time() - started < 1.0  # before anyone else could take the lease
    assert log == ["a started", "a stopped"]
    assert not a.leading.is_set() and a.stopped_leading.is_set()


async def test_a_conflicting_write_loses_the_race() -> None:
    api = FakeAPI()
    a, b = elector(api, "a"), elector(api, "b")
    await api.create(LEASES, {"metadata": {"name": "kube-controller-manager",
                                           "namespace": "kube-system"},
                              "spec": {"holderIdentity": "", "leaseDurationSeconds": 1}},
                     "kube-system")
    # Both read the free lease; only the first write with that resourceVersion wins.
    results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(results) == [False, True]
    holder = lease(api)["spec"]["holderIdentity"]
    assert holder == ("a" if results[0] else "b")


async def test_an_exception_in_the_leader_is_raised_after_release() -> None:
    api = FakeAPI()
    a = elector(api, "a")

    async def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await asyncio.wait_for(a.run(broken), 2)
    assert lease(api)["spec"]["holderIdentity"] == ""


async def test_server_errors_on_get_are_retried() -> None:
    api = FakeAPI()
    calls = {"n": 0}

    def flaky(verb: str, res: Resource, obj: dict[str, Any] | None) -> Exception | None:
        if verb == "get" and res.plural == "leases" and calls["n"] < 2:
            calls["n"] += 1
            return StatusError(500, "InternalError", "boom")
        return None

    api.fail(flaky)
    a = elector(api, "a")
    task = asyncio.create_task(a.run(lambda: asyncio.Event().wait()))
    await asyncio.wait_for(a.leading.wait(), 2)
    assert calls["n"] == 2
    await stop(task)
