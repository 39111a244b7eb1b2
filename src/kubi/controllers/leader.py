"""Leader election on a coordination.k8s.io/v1 Lease, as client-go does it.

Candidates share one Lease (`kube-system/<name>`). A candidate takes it when
it is free or has not changed for a whole `leaseDurationSeconds` of the
candidate's own clock (remote timestamps are never trusted), and the holder
renews it every `retry_period`. Every write carries the resourceVersion last
read, so two candidates racing for a free lease cannot both win.

`LeaderElector.run(lead)` campaigns, then runs `lead()` while renewing. If
renewals keep failing for `renew_deadline` (shorter than the lease duration,
so nobody else can have taken over yet), `lead()` is cancelled before `run`
returns; on a clean stop the lease is released so a successor need not wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubi.api.errors import StatusError
from kubi.api.meta import now_rfc3339_micro
from kubi.client.client import Client, Resource

log = logging.getLogger(__name__)

LEASES = Resource("coordination.k8s.io", "v1", "leases", True, "Lease")

LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
JITTER_FACTOR = 1.2


@dataclass(frozen=True)
class LeaderElectionRecord:
    holder_identity: str
    lease_duration_seconds: int
    acquire_time: str
    renew_time: str
    lease_transitions: int

    @classmethod
    def from_lease(cls, lease: dict[str, Any]) -> LeaderElectionRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder_identity=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime") or "",
            renew_time=spec.get("renewTime") or "",
            lease_transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.lease_transitions,
        }
        if self.acquire_time:
            spec["acquireTime"] = self.acquire_time
        if self.renew_time:
            spec["renewTime"] = self.renew_time
        return spec


class LeaderElector:
    def __init__(self, client: Client, *, name: str, identity: str,
                 namespace: str = "kube-system",
                 lease_duration: float = LEASE_DURATION,
                 renew_deadline: float = RENEW_DEADLINE,
                 retry_period: float = RETRY_PERIOD,
                 release_on_cancel: bool = True,
                 on_new_leader: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not lease_duration > renew_deadline > JITTER_FACTOR * retry_period:
            raise ValueError("need lease_duration > renew_deadline > 1.2 * retry_period")
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self.on_new_leader = on_new_leader
        self.leading = asyncio.Event()
        self.stopped_leading = asyncio.Event()
        self._clock = clock
        self._lease: dict[str, Any] | None = None  # last copy read or written
        self._observed: LeaderElectionRecord | None = None
        self._observed_time = 0.0
        self._reported_leader = ""

    # ---- what others may ask

    @property
    def leader(self) -> str:
        return self._observed.holder_identity if self._observed else ""

    @property
    def is_leader(self) -> bool:
        return self.leader == self.identity

    # ---- the loop

    async def run(self, lead: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Campaign, then run `lead()` for as long as the lease is held."""
        self.stopped_leading.clear()
        try:
            await self._acquire()
            self.leading.set()
            log.info("%s: became leader of lease %s/%s", self.identity, self.namespace, self.name)
            leader_task = asyncio.create_task(lead(), name=f"leading-{self.name}")
            renew_task = asyncio.create_task(self._renew(), name=f"renew-{self.name}")
            try:
                await asyncio.wait({leader_task, renew_task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (leader_task, renew_task):
                    task.cancel()
                await asyncio.gather(leader_task, renew_task, return_exceptions=True)
                self.leading.clear()
            if renew_task.done() and not renew_task.cancelled() and renew_task.exception() is None:
                log.warning("%s: lost lease %s/%s", self.identity, self.namespace, self.name)
            elif self.release_on_cancel:
                await self._release()
            if not leader_task.cancelled() and leader_task.exception() is not None:
                raise leader_task.exception()  # type: ignore[misc]
        except asyncio.CancelledError:
            if self.release_on_cancel and self.is_leader:
                await asyncio.shield(self._release())
            raise
        finally:
            self.leading.clear()
            self.stopped_leading.set()

    async def _acquire(self) -> None:
        while True:
            acquired = await self.try_acquire_or_renew()
            self._report_transition()
            if acquired:
                return
            await asyncio.sleep(self.retry_period * (1 + random.random() * (JITTER_FACTOR - 1)))

    async def _renew(self) -> None:
        """Returns when renewal failed for a whole renew deadline."""
        while await self._renew_within_deadline():
            await asyncio.sleep(self.retry_period)

    async def _renew_within_deadline(self) -> bool:
        # asyncio.timeout, unlike wait_for on 3.11, never swallows an outer cancel.
        try:
            async with asyncio.timeout(self.renew_deadline):
                while not await self.try_acquire_or_renew():
                    await asyncio.sleep(self.retry_period)
            return True
        except TimeoutError:
            return False
        finally:
            self._report_transition()

    # ---- one attempt

    async def try_acquire_or_renew(self) -> bool:
        now = now_rfc3339_micro()
        desired = LeaderElectionRecord(self.identity, int(self.lease_duration), now, now, 0)

        # Fast path: the holder renews its last known copy without reading first.
        if self.is_leader and self._lease_valid() and self._lease is not None:
            record = self._renewal_of(desired, self._observed)
            if await self._update(record):
                return True

        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except StatusError as err:
            if err.code != 404:
                log.warning("error retrieving lease %s/%s: %s", self.namespace, self.name, err)
                return False
            return await self._create(desired)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("error retrieving lease %s/%s: %r", self.namespace, self.name, exc)
            return False

        self._lease = lease
        current = LeaderElectionRecord.from_lease(lease)
        if current != self._observed:
            self._observe(current)
        if current.holder_identity and self._lease_valid() and not self.is_leader:
            return False
        if self.is_leader:
            record = self._renewal_of(desired, current)
        else:
            record = LeaderElectionRecord(self.identity, desired.lease_duration_seconds,
                                          now, now, current.lease_transitions + 1)
        return await self._update(record)

    # ---- plumbing

    @staticmethod
    def _renewal_of(desired: LeaderElectionRecord,
                    held: LeaderElectionRecord | None) -> LeaderElectionRecord:
        assert held is not None
        return LeaderElectionRecord(desired.holder_identity, desired.lease_duration_seconds,
                                    held.acquire_time, desired.renew_time, held.lease_transitions)

    def _observe(self, record: LeaderElectionRecord) -> None:
        self._observed = record
        self._observed_time = self._clock()

    def _lease_valid(self) -> bool:
        if self._observed is None:
            return False
        return self._observed_time + self._observed.lease_duration_seconds > self._clock()

    def _report_transition(self) -> None:
        if self.leader == self._reported_leader:
            return
        self._reported_leader = self.leader
        if self.leader:
            log.info("lease %s/%s is held by %s", self.namespace, self.name, self.leader)
        if self.on_new_leader is not None:
            self.on_new_leader(self.leader)

    async def _create(self, record: LeaderElectionRecord) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_spec(),
        }
        try:
            self._lease = await self.client.create(LEASES, body, self.namespace)
        except (TimeoutError, StatusError, aiohttp.ClientError, OSError) as exc:
            log.warning("error creating lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        self._observe(record)
        return True

    async def _update(self, record: LeaderElectionRecord) -> bool:
        assert self._lease is not None
        body = {**self._lease, "spec": {**(self._lease.get("spec") or {}), **record.to_spec()}}
        try:
            self._lease = await self.client.replace(LEASES, body)
        except (TimeoutError, StatusError, aiohttp.ClientError, OSError) as exc:
            log.info("failed to update lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        self._observe(record)
        return True

    async def _release(self) -> None:
        """Hand the lease back: no holder, one-second duration, transitions kept."""
        if not self.is_leader or self._observed is None or self._lease is None:
            return
        now = now_rfc3339_micro()
        record = LeaderElectionRecord("", 1, now, now, self._observed.lease_transitions)
        try:
            async with asyncio.timeout(self.renew_deadline):
                await self._update(record)
        except TimeoutError:
            log.warning("timed out releasing lease %s/%s", self.namespace, self.name)
