"""What the runtime holds for one pod: its sandboxes and containers, newest first.

The agent asks the runtime, not its own memory, what exists: that is what
makes a restarted agent adopt running pods (same container IDs, restart
counts from the attempts the runtime recorded) instead of starting them
again. `PodRuntime` groups one pod's share of the runtime's lists; the
latest attempt of a container is its current state, the one before it its
`lastState`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubi.node.runtime.base import (
    CREATED,
    EXITED,
    RUNNING,
    SANDBOX_READY,
    ContainerStatus,
    SandboxStatus,
)


def _newest_first_sandboxes(items: list[SandboxStatus]) -> list[SandboxStatus]:
    # Equal creation times (a coarse clock) put the ready sandbox first.
    return sorted(items, key=lambda s: (s.created_at, s.state == SANDBOX_READY), reverse=True)


def _newest_first(items: list[ContainerStatus]) -> list[ContainerStatus]:
    return sorted(items, key=lambda c: (c.created_at, c.attempt), reverse=True)


@dataclass
class PodRuntime:
    uid: str
    sandboxes: list[SandboxStatus] = field(default_factory=list)
    containers: list[ContainerStatus] = field(default_factory=list)

    @classmethod
    def collect(cls, uid: str, sandboxes: list[SandboxStatus],
                containers: list[ContainerStatus]) -> PodRuntime:
        """The part of the runtime's lists that belongs to pod `uid`."""
        own = [s for s in sandboxes if s.uid == uid]
        ids = {s.id for s in own}
        return cls(uid, _newest_first_sandboxes(own),
                   _newest_first([c for c in containers if c.sandbox_id in ids]))

    @property
    def sandbox(self) -> SandboxStatus | None:
        return self.sandboxes[0] if self.sandboxes else None

    @property
    def sandbox_ready(self) -> bool:
        return self.sandbox is not None and self.sandbox.state == SANDBOX_READY

    def attempts(self, name: str) -> list[ContainerStatus]:
        return [c for c in self.containers if c.name == name]

    def latest(self, name: str) -> ContainerStatus | None:
        for c in self.containers:
            if c.name == name:
                return c
        return None

    def previous(self, name: str) -> ContainerStatus | None:
        attempts = self.attempts(name)
        return attempts[1] if len(attempts) > 1 else None

    def running(self) -> list[ContainerStatus]:
        return [c for c in self.containers if c.state == RUNNING]

    def live(self) -> list[ContainerStatus]:
        """Containers that may hold a process: running, or created and not yet exited."""
        return [c for c in self.containers if c.state not in (EXITED,)]

    def has_created(self, name: str) -> bool:
        latest = self.latest(name)
        return latest is not None and latest.state in (CREATED, RUNNING)
