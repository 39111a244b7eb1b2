"""The agent's HTTPS endpoint: client certificates, logs and exec over TLS."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from kubi.apiserver.pki import PKI
from kubi.node.agent.backoff import Backoff
from kubi.node.agent.context import NodeContext
from kubi.node.agent.endpoints import WorkerEndpoints
from kubi.node.agent.probes import ProbeManager
from kubi.node.agent.server import AgentServer
from kubi.node.agent.tls import client_identity, ensure_self_signed, server_context
from kubi.node.agent.worker import PodWorker
from tests.unit.test_agent_fakes import FakeRuntime, append, cri_line
from tests.unit.test_agent_worker import FakeRecorder, FakeStatuses, cont, literal_env, make_pod


@pytest.fixture
async def served(tmp_path: Path) -> Any:
    pki = PKI(tmp_path / "pki")
    pki.ensure_ca()
    serving = pki.issue("agent", common_name="n1", server=True, hosts=("127.0.0.1",))
    good = pki.issue("apiserver-client", common_name="kube-apiserver-kubelet-client")
    other = pki.issue("someone", common_name="someone", organizations=("system:masters",))
    runtime = FakeRuntime()
    probes = ProbeManager(lambda sid: runtime, record=lambda *a: None, on_change=lambda k: None)
    ctx = NodeContext(node_name="n1", host_ip="192.0.2.1", statuses=FakeStatuses(),  # type: ignore[arg-type]
                      recorder=FakeRecorder(), probes=probes, env=literal_env,  # type: ignore[arg-type]
                      log_root=tmp_path / "logs", pod_root=tmp_path / "pods",
                      backoff=Backoff())
    worker = PodWorker(ctx, runtime, make_pod(cont("c", "run")))
    await worker.sync()
    workers = {worker.key: worker}
    server = AgentServer(WorkerEndpoints(workers.get), bind="127.0.0.1", port=0,
                         ssl_context=server_context(serving.cert, serving.key, pki.ca.cert))
    port = await server.start()

    def client_ssl(pair: Any) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(pki.ca.cert))
        if pair is not None:
            ctx.load_cert_chain(str(pair.cert), str(pair.key))
        return ctx

    yield f"https://127.0.0.1:{port}", client_ssl(good), client_ssl(other), client_ssl(None), \
        runtime, worker
    await server.stop()
    await probes.close()


async def get(url: str, ctx: ssl.SSLContext) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx) as resp:
        return resp.status, await resp.read()


async def test_only_the_api_server_client_may_call(served: Any) -> None:
    base, good, other, anonymous, _, _ = served
    assert await get(base + "/healthz", good) == (200, b"ok")
    code, body = await get(base + "/healthz", other)
    assert code == 403
    assert orjson.loads(body)["message"] == \
        "Forbidden (user=someone, verb=get, resource=nodes, subresource=proxy)"
    with pytest.raises(aiohttp.ClientError):
        await get(base + "/healthz", anonymous)


async def test_container_logs(served: Any) -> None:
    base, good, _, _, runtime, _ = served
    [status] = runtime.running("c")
    append(status.log_path, cri_line("second"))
    code, body = await get(base + "/containerLogs/default/p/c?tailLines=1", good)
    assert (code, body) == (200, b"second\n")
    code, body = await get(base + "/containerLogs/default/p/c", good)
    assert body == b"c attempt 0 started\nsecond\n"
    code, body = await get(base + "/containerLogs/default/p/c?previous=true", good)
    assert code == 400
    assert orjson.loads(body)["message"] == \
        'previous terminated container "c" in pod "p" not found'
    code, body = await get(base + "/containerLogs/default/p/nope", good)
    assert orjson.loads(body)["message"] == "container nope is not valid for pod p"
    code, body = await get(base + "/containerLogs/default/missing/c", good)
    assert code == 404
    code, body = await get(base + "/containerLogs/default/p/c?tailLines=x", good)
    assert code == 400


async def test_previous_logs_after_a_restart(served: Any) -> None:
    base, good, _, _, runtime, worker = served
    [status] = runtime.running("c")
    runtime.crash(status.id, 1)
    await worker.sync()
    code, body = await get(base + "/containerLogs/default/p/c?previous=true", good)
    assert (code, body) == (200, b"c attempt 0 started\n")
    code, body = await get(base + "/containerLogs/default/p/c", good)
    assert body == b"c attempt 1 started\n"


async def test_follow_ends_when_the_container_stops(served: Any) -> None:
    base, good, _, _, runtime, worker = served
    [status] = runtime.running("c")

    async def stop_later() -> None:
        await asyncio.sleep(0.3)
        runtime.crash(status.id, 0)
        await worker.observe()

    stopper = asyncio.create_task(stop_later())
    code, body = await asyncio.wait_for(get(base + "/containerLogs/default/p/c?follow=true",
                                            good), 5)
    await stopper
    assert (code, body) == (200, b"c attempt 0 started\n")


async def test_exec_over_tls_websocket(served: Any) -> None:
    base, good, _, _, _, _ = served
    url = base.replace("https", "wss") + \
        "/exec/default/p/c?command=exit&command=3&stdout=true&stderr=true"
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url, ssl=good, protocols=("v5.channel.k8s.io",)) as ws:
        frames = [m.data async for m in ws if m.type == aiohttp.WSMsgType.BINARY]
    status = orjson.loads(frames[-1][1:])
    assert frames[-1][0] == 3
    assert status["reason"] == "NonZeroExitCode"


async def test_exec_needs_an_upgrade_and_a_running_container(served: Any) -> None:
    base, good, _, _, runtime, _ = served
    code, body = await get(base + "/exec/default/p/c?command=ls&stdout=true", good)
    assert code == 400 and orjson.loads(body)["message"] == "Upgrade request required"
    [status] = runtime.running("c")
    runtime.crash(status.id, 0)
    url = base.replace("https", "wss") + "/exec/default/p/c?command=ls&stdout=true"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(url, ssl=good, protocols=("v5.channel.k8s.io",))
    assert info.value.status == 400


def test_self_signed_and_identity(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, "n1", ["192.0.2.1", "not-an-ip"])
    assert ensure_self_signed(tmp_path, "n1", []) == (cert, key)
    assert client_identity({"subject": ((("organizationName", "g"),),
                                        (("commonName", "u"),))}) == ("u", ["g"])
    assert client_identity(None) == ("", [])
