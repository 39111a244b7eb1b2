"""The pod status writer: recognising the echo of its own writes, telling when
writes are pending, and skipping the diff when nothing changed."""

from __future__ import annotations

from typing import Any

from kubi.node.status import status_patch
from tests.unit.test_node_sim_pods import pod, writer


async def test_the_echo_of_our_own_write_is_recognised_once() -> None:
    pods = {"default/web": pod()}
    manager, _ = writer(pods)
    manager.start()
    manager.set_status("default/web", "u1", {"phase": "Running"})
    assert manager.pending()
    await manager.flush()
    await manager.stop()
    assert not manager.pending()
    echo = pods["default/web"]
    assert not manager.wrote("default/web", pod())  # the version before the write
    assert manager.wrote("default/web", echo)
    assert not manager.wrote("default/web", echo)  # only once
    assert not manager.wrote("default/other", echo)


async def test_a_newer_version_clears_what_we_wrote() -> None:
    pods = {"default/web": pod()}
    manager, _ = writer(pods)
    manager.start()
    manager.set_status("default/web", "u1", {"phase": "Running"})
    await manager.flush()
    await manager.stop()
    written = pods["default/web"]
    newer: dict[str, Any] = {**written, "metadata": {**written["metadata"],
                                                     "resourceVersion": "100"}}
    assert not manager.wrote("default/web", newer)
    assert not manager.wrote("default/web", written)


def test_an_unchanged_status_needs_no_patch() -> None:
    stored = pod()
    stored["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert status_patch(stored, {"phase": "Running",
                                 "conditions": [{"type": "Ready", "status": "True"}]}) is None
    patch = status_patch(stored, {"phase": "Running",
                                  "conditions": [{"type": "Ready", "status": "False"}]})
    assert patch is not None and patch["metadata"] == {"uid": "u1"}
