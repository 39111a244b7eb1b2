"""The relist's view of each pod, and what counts as news for its worker."""

from __future__ import annotations

from kubi.node.agent.pleg import Relist, view_states
from kubi.node.agent.worker import unchanged_but_for
from kubi.node.runtime.base import (
    CREATED,
    EXITED,
    RUNNING,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    ContainerConfig,
    SandboxConfig,
)
from tests.unit.test_agent_fakes import FakeRuntime


def test_what_a_sync_does_itself_is_no_news() -> None:
    before: set[tuple[str, str]] = set()
    started = {("s/a", SANDBOX_READY), ("c/1", RUNNING)}
    assert unchanged_but_for(before, started)
    assert unchanged_but_for({("c/1", CREATED)}, {("c/1", RUNNING)})
    assert unchanged_but_for(started, started)


def test_an_exit_a_stopped_sandbox_or_a_vanished_container_is_news() -> None:
    running = {("s/a", SANDBOX_READY), ("c/1", RUNNING)}
    assert not unchanged_but_for(running, {("s/a", SANDBOX_READY), ("c/1", EXITED)})
    assert not unchanged_but_for(set(), {("s/a", SANDBOX_READY), ("c/1", EXITED)})
    assert not unchanged_but_for(running, {("s/a", SANDBOX_NOTREADY), ("c/1", RUNNING)})
    assert not unchanged_but_for(running, {("s/a", SANDBOX_READY)})


async def test_the_relist_sees_a_pod_as_its_worker_does() -> None:
    runtime = FakeRuntime()
    changed: list[str] = []
    relist = Relist(runtime, on_change=changed.append)
    await relist.prime()
    assert relist.states_of("u1") == set()
    sandbox = await runtime.run_pod_sandbox(SandboxConfig(
        name="web", namespace="default", uid="u1", hostname="web", hosts_file="",
        resolv_conf=""))
    container = await runtime.create_container(sandbox, ContainerConfig(
        name="c", image="busybox", argv=["sleep", "1"]))
    await runtime.start_container(container)
    assert await relist.relist() == {"u1"} and changed == ["u1"]
    worker_view = view_states(await runtime.list_pod_sandboxes(),
                              await runtime.list_containers(sandbox))
    assert relist.states_of("u1") == worker_view == {
        (f"s/{sandbox}", SANDBOX_READY), (f"c/{container}", RUNNING)}
    runtime.crash(container)
    await relist.relist()
    assert (f"c/{container}", EXITED) in relist.states_of("u1")
