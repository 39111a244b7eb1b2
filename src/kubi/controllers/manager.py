"""The controller manager: leader election around a set of controllers.

`ControllerManager.run()` campaigns for the `kube-system/kube-controller-manager`
Lease. Once leading it builds every controller from its factory against a
fresh `ControllerContext` (client, shared informers, event broadcaster), so
controllers register their handlers and indexes before the informers start;
it then starts the informers, waits until all have synced and runs each
controller's workers. Losing the lease cancels all of that, stops the
informers and goes back to campaigning with fresh state, so two managers
never act at once and a returning leader never trusts a stale cache.
Cancelling `run` (or `stop()`) tears everything down and releases the lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kubi.client.client import Client
from kubi.controllers.base import Controller
from kubi.controllers.events import EventBroadcaster, EventRecorder
from kubi.controllers.informers import SharedInformers
from kubi.controllers.leader import (
    LEASE_DURATION,
    RENEW_DEADLINE,
    RETRY_PERIOD,
    LeaderElector,
)

log = logging.getLogger(__name__)

LEASE_NAME = "kube-controller-manager"


@dataclass
class ControllerContext:
    """What a controller factory gets to build a controller with."""

    client: Client
    informers: SharedInformers
    events: EventBroadcaster

    def recorder(self, component: str) -> EventRecorder:
        return self.events.recorder(component)


ControllerFactory = Callable[[ControllerContext], Controller]


class ControllerManager:
    def __init__(self, client: Client, *, identity: str,
                 controllers: Sequence[ControllerFactory],
                 workers: Mapping[str, int] | None = None,
                 leader_election: bool = True,
                 lease_name: str = LEASE_NAME,
                 lease_namespace: str = "kube-system",
                 lease_duration: float = LEASE_DURATION,
                 renew_deadline: float = RENEW_DEADLINE,
                 retry_period: float = RETRY_PERIOD) -> None:
        self.client = client
        self.identity = identity
        self.factories = list(controllers)
        self.workers = dict(workers or {})
        self.leader_election = leader_election
        self.events = EventBroadcaster(client)
        self.elector: LeaderElector | None = None
        if leader_election:
            self.elector = LeaderElector(
                client, name=lease_name, namespace=lease_namespace, identity=identity,
                lease_duration=lease_duration, renew_deadline=renew_deadline,
                retry_period=retry_period)
        self.controllers: list[Controller] = []
        self.informers: SharedInformers | None = None
        self.running = asyncio.Event()  # set while controllers' workers run
        self._task: asyncio.Task[None] | None = None

    # ---- lifecycle

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="controller-manager")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run(self) -> None:
        """Run until cancelled: lead when elected, step down when the lease is lost."""
        self.events.start()
        try:
            if self.elector is None:
                await self._lead()
                return
            while True:
                await self.elector.run(self._lead)
                log.warning("%s: leadership lost, controllers stopped; campaigning again",
                            self.identity)
        finally:
            await self.events.stop()

    # ---- leading

    async def _lead(self) -> None:
        informers = SharedInformers(self.client)
        context = ControllerContext(self.client, informers, self.events)
        controllers = [factory(context) for factory in self.factories]
        self.informers, self.controllers = informers, controllers
        informers.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            await informers.wait_for_sync()
            log.info("%s: caches synced, starting %s", self.identity,
                     ", ".join(c.name for c in controllers))
            for controller in controllers:
                count = self.workers.get(controller.name, controller.workers)
                tasks.append(asyncio.create_task(controller.run(count),
                                                 name=f"controller-{controller.name}"))
            self.running.set()
            if tasks:
                await asyncio.gather(*tasks)
            else:
                await asyncio.Event().wait()
        finally:
            self.running.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await informers.stop()
            self.informers, self.controllers = None, []
