"""pods/binding as upstream's BindingREST: the pod gets its node and the
PodScheduled condition, nothing else about it changes (its managedFields
included: upstream binds through storage, so no manager owns nodeName), and
a second binding, a deleted pod or a wrong uid are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from tests.unit.apiserver_fixtures import admin_client

PODS = Resource("", "v1", "pods", True, "Pod")


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def binding(name: str, node: str, uid: str | None = None) -> dict:
    md: dict = {"name": name}
    if uid:
        md["uid"] = uid
    return {"apiVersion": "v1", "kind": "Binding", "metadata": md,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


async def bind(api: Client, body: dict) -> object:
    name = body["metadata"]["name"]
    return await api.request("POST", f"/api/v1/namespaces/default/pods/{name}/binding",
                             body=body)


async def test_binding_sets_the_node_and_condition_and_leaves_managed_fields(
        tmp_path: Path) -> None:
    async with admin_client(tmp_path) as api:
        created = await api.create(PODS, pod("web"), "default")
        answer = await bind(api, binding("web", "node-a", created["metadata"]["uid"]))
        assert isinstance(answer, dict) and answer["status"] == "Success"
        bound = await api.get(PODS, "web", "default")
        assert bound["spec"]["nodeName"] == "node-a"
        scheduled = [c for c in bound["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert len(scheduled) == 1 and scheduled[0]["status"] == "True"
        assert bound["metadata"]["managedFields"] == created["metadata"]["managedFields"]
        assert int(bound["metadata"]["resourceVersion"]) > \
            int(created["metadata"]["resourceVersion"])

        with pytest.raises(StatusError) as again:
            await bind(api, binding("web", "node-b"))
        assert again.value.code == 409
        assert 'already assigned to node "node-a"' in str(again.value)


async def test_binding_checks_the_uid_and_the_pod(tmp_path: Path) -> None:
    async with admin_client(tmp_path) as api:
        await api.create(PODS, pod("web"), "default")
        with pytest.raises(StatusError) as wrong:
            await bind(api, binding("web", "node-a", "not-the-uid"))
        assert wrong.value.code == 409
        with pytest.raises(StatusError) as missing:
            await bind(api, binding("nope", "node-a"))
        assert missing.value.code == 404
        assert (await api.get(PODS, "web", "default"))["spec"].get("nodeName") is None
