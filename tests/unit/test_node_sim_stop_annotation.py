"""The `kubi.dev/sim-stopped` annotation stops and starts a simulated node from outside."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubi.api.errors import StatusError
from kubi.client.client import Client
from kubi.node.heartbeat import LEASES
from kubi.node.sim import SimNodes
from kubi.node.sim.nodes import NODES, STOPPED_ANNOTATION, stopped_by_annotation
from tests.unit.apiserver_fixtures import admin_client
from tests.unit.test_node_sim_integration import PODS, bound_pod, eventually, ready


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with admin_client(tmp_path) as api:
        yield api


def annotated(value: str | None) -> dict[str, Any]:
    return {"metadata": {"annotations": {STOPPED_ANNOTATION: value}}}


def test_only_the_value_true_stops_a_node() -> None:
    assert stopped_by_annotation({"metadata": {"annotations": {STOPPED_ANNOTATION: "true"}}})
    assert not stopped_by_annotation({"metadata": {"annotations": {STOPPED_ANNOTATION: "yes"}}})
    assert not stopped_by_annotation({"metadata": {"annotations": {STOPPED_ANNOTATION: ""}}})
    assert not stopped_by_annotation({"metadata": {}})


async def renew_time(client: Client, node: str) -> str:
    lease = await client.get(LEASES, node, "kube-node-lease")
    return str(lease["spec"]["renewTime"])


async def test_annotation_stops_and_starts_a_node(client: Client) -> None:
    sim = SimNodes(client, count=2, start_delay=0, heartbeat=0.2)
    await sim.start()
    try:
        await client.create(PODS, bound_pod("web", "sim-node-1"))

        async def running() -> bool:
            return ready(await client.get(PODS, "web", "default"))

        await eventually(running)
        await client.patch(NODES, "sim-node-1", annotated("true"))

        async def paused() -> bool:
            return sim.heartbeats["sim-node-1"].paused

        await eventually(paused)
        stale = await renew_time(client, "sim-node-1")
        other = await renew_time(client, "sim-node-0")
        # A graceful delete is not carried out by a stopped node.
        await client.delete(PODS, "web", "default")
        await asyncio.sleep(0.6)
        assert await renew_time(client, "sim-node-1") == stale
        assert await renew_time(client, "sim-node-0") != other
        pod = await client.get(PODS, "web", "default")
        assert pod["metadata"]["deletionTimestamp"]

        await client.patch(NODES, "sim-node-1", annotated(None))

        async def renewed_and_pod_gone() -> bool:
            if await renew_time(client, "sim-node-1") == stale:
                return False
            try:
                await client.get(PODS, "web", "default")
            except StatusError as err:
                return err.code == 404
            return False

        await eventually(renewed_and_pod_gone)
        assert not sim.heartbeats["sim-node-1"].paused
    finally:
        await sim.stop()


async def test_a_node_stopped_in_code_stays_stopped_across_node_updates(client: Client) -> None:
    sim = SimNodes(client, count=1, start_delay=0, heartbeat=0.2)
    await sim.start()
    try:
        sim.stop_node("sim-node-0")
        await client.patch(NODES, "sim-node-0", {"metadata": {"labels": {"touched": "yes"}}})

        async def seen() -> bool:
            node = sim.node_informer.get("sim-node-0") or {}
            return node.get("metadata", {}).get("labels", {}).get("touched") == "yes"

        await eventually(seen)
        assert sim.heartbeats["sim-node-0"].paused
    finally:
        await sim.stop()


async def test_a_node_annotated_before_start_stays_silent(client: Client) -> None:
    first = SimNodes(client, count=1, start_delay=0, heartbeat=0.2)
    await first.start()
    await first.stop()
    await client.patch(NODES, "sim-node-0", annotated("true"))
    stale = await renew_time(client, "sim-node-0")
    second = SimNodes(client, count=1, start_delay=0, heartbeat=0.2)
    await second.start()
    try:
        await asyncio.sleep(0.6)
        assert second.heartbeats["sim-node-0"].paused
        assert await renew_time(client, "sim-node-0") == stale
        await client.patch(NODES, "sim-node-0", annotated(None))

        async def renewed() -> bool:
            return await renew_time(client, "sim-node-0") != stale

        await eventually(renewed)
    finally:
        await second.stop()
