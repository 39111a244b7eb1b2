"""The relist: notice container and sandbox state changes the runtime does not announce.

Like the kubelet's PLEG, a loop lists the runtime's sandboxes and containers
every `period` (1 s) and compares each one's state with the previous list.
Every pod uid with a change — a container that exited, appeared, vanished,
a sandbox that died — is handed to `on_change`, which wakes that pod's
worker (or cleans up after a pod nobody owns any more). Workers therefore
react to an exit within a period, without polling the runtime themselves.
`states_of(uid)` tells what the last relist saw of one pod, so that a
worker that has already seen exactly that (it started the container
itself) is not woken for nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from kubi.node.runtime.base import ContainerStatus, Runtime, SandboxStatus

log = logging.getLogger(__name__)

PERIOD = 1.0

# id -> (state, pod uid) of every container and sandbox, keyed apart by a prefix.
Snapshot = dict[str, tuple[str, str]]


def changed_uids(previous: Snapshot, current: Snapshot) -> set[str]:
    """The pods whose containers or sandboxes changed between two snapshots."""
    out = {uid for key, (state, uid) in current.items() if previous.get(key) != (state, uid)}
    out |= {uid for key, (_, uid) in previous.items() if key not in current}
    out.discard("")
    return out


def view_states(sandboxes: Iterable[SandboxStatus],
                containers: Iterable[ContainerStatus]) -> set[tuple[str, str]]:
    """The (snapshot key, state) pairs of one pod's sandboxes and containers."""
    return ({(f"s/{s.id}", s.state) for s in sandboxes}
            | {(f"c/{c.id}", c.state) for c in containers})


async def snapshot(runtime: Runtime) -> Snapshot:
    sandboxes = await runtime.list_pod_sandboxes()
    uid_of = {s.id: s.uid for s in sandboxes}
    snap: Snapshot = {f"s/{s.id}": (s.state, s.uid) for s in sandboxes}
    for c in await runtime.list_containers():
        snap[f"c/{c.id}"] = (c.state, uid_of.get(c.sandbox_id, ""))
    return snap


class Relist:
    def __init__(self, runtime: Runtime, *, on_change: Callable[[str], None],
                 period: float = PERIOD) -> None:
        self.runtime = runtime
        self.on_change = on_change
        self.period = period
        self.last: Snapshot = {}
        self._by_uid: dict[str, set[tuple[str, str]]] | None = None

    async def prime(self) -> None:
        """Take the first snapshot without reporting anything as changed."""
        self.last = await snapshot(self.runtime)
        self._by_uid = None

    def states_of(self, uid: str) -> set[tuple[str, str]]:
        """What the last relist saw of pod `uid`, as `view_states` puts it."""
        if self._by_uid is None:
            self._by_uid = {}
            for key, (state, owner) in self.last.items():
                self._by_uid.setdefault(owner, set()).add((key, state))
        return self._by_uid.get(uid, set())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            await self.relist()

    async def relist(self) -> set[str]:
        try:
            current = await snapshot(self.runtime)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("listing the runtime failed")
            return set()
        changed = changed_uids(self.last, current)
        self.last = current
        self._by_uid = None
        for uid in changed:
            self.on_change(uid)
        return changed
