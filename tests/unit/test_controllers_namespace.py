"""Namespace deletion, default ServiceAccounts and the root CA ConfigMap."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubi.api import catalog
from kubi.client.client import Resource
from kubi.controllers.events import EventBroadcaster
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext
from kubi.controllers.namespace import NAMESPACES, NamespaceController, namespaced_resources
from kubi.controllers.namespace_deletion import (
    CONDITION_TYPES,
    DeletionTotals,
    assess_remaining,
    content_conditions,
    finalizers_after,
    gvr_string,
    merge_conditions,
    pod_termination_estimate,
)
from kubi.controllers.rootcacert import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    RootCACertPublisher,
    ca_pem_from_kubeconfig,
)
from kubi.controllers.serviceaccounts import SERVICE_ACCOUNTS, ServiceAccountsController
from tests.unit.lifecycle_fakeapi import LifecycleFakeAPI

NOW = 1_700_000_000.0
PODS = Resource("", "v1", "pods", True, "Pod")
CMS = Resource("", "v1", "configmaps", True, "ConfigMap")
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def pod(grace: int | None = 30, phase: str = "Running") -> dict[str, Any]:
    spec = {} if grace is None else {"terminationGracePeriodSeconds": grace}
    return {"spec": spec, "status": {"phase": phase}}


# ---- pure parts


def test_pod_termination_estimate() -> None:
    pods = [pod(30), pod(10), pod(600, phase="Succeeded"), pod(None)]
    assert pod_termination_estimate(pods, NOW - 5, NOW) == 30
    assert pod_termination_estimate(pods, NOW - 30, NOW) == 0  # the grace period is used up
    assert pod_termination_estimate([], NOW, NOW) == 0


def test_assess_remaining() -> None:
    gvr = gvr_string("", "v1", "pods")
    assert gvr == "/v1, Resource=pods"
    assert assess_remaining([], 30, namespace="demo", gvr=gvr).remaining == 0
    waiting = assess_remaining([{"metadata": {}}], 30, namespace="demo", gvr=gvr)
    assert (waiting.estimate, waiting.remaining, waiting.error) == (30, 1, None)
    held = assess_remaining([{"metadata": {"finalizers": ["a/b", "a/b"]}}, {"metadata": {}}], 0,
                            namespace="demo", gvr=gvr)
    assert (held.estimate, held.remaining, held.finalizers) == (15, 2, {"a/b": 2})
    stuck = assess_remaining([{"metadata": {}}], 0, namespace="demo", gvr=gvr)
    assert stuck.error == "unexpected items still remain in namespace: demo for gvr: " \
                          "/v1, Resource=pods"


def test_conditions_as_upstream_words_them() -> None:
    totals = DeletionTotals()
    totals.add("pods", "", assess_remaining([{"metadata": {"finalizers": ["x.io/f"]}}], 30,
                                            namespace="demo", gvr="g"))
    totals.add("deployments", "apps", assess_remaining([{"metadata": {}}] * 2, 0,
                                                       namespace="demo", gvr="/apps/v1"))
    failing = content_conditions(totals)
    assert failing["NamespaceContentRemaining"] == (
        "SomeResourcesRemain",
        ("Some resources are remaining: deployments.apps has 2 resource instances, "
         "pods. has 1 resource instances"))
    assert failing["NamespaceFinalizersRemaining"] == (
        "SomeFinalizerRemain", "Some finalizers are remaining: x.io/f in 1 resource instances")
    assert failing["NamespaceDeletionContentFailure"][1].startswith(
        "Failed to delete all resource types, 1 remaining: unexpected items still remain")
    assert totals.estimate == 30

    conditions, changed = merge_conditions([], {}, NOW)
    assert changed and [c["type"] for c in conditions] == list(CONDITION_TYPES)
    assert conditions[0] == {"type": "NamespaceDeletionDiscoveryFailure", "status": "False",
                             "lastTransitionTime": "2023-11-14T22:13:20Z",
                             "reason": "ResourcesDiscovered",
                             "message": "All resources successfully discovered"}
    assert merge_conditions(conditions, {}, NOW + 5) == (conditions, False)
    later, changed = merge_conditions(conditions, failing, NOW + 5)
    remaining = next(c for c in later if c["type"] == "NamespaceContentRemaining")
    assert changed and remaining["status"] == "True"
    assert remaining["lastTransitionTime"] == "2023-11-14T22:13:25Z"


def test_finalizers_after_and_resource_order() -> None:
    ns = {"spec": {"finalizers": ["kubernetes", "z.io/x", "a.io/y", "z.io/x"]}}
    assert finalizers_after(ns, "kubernetes") == ["a.io/y", "z.io/x"]
    resources = namespaced_resources()
    assert (resources[0].group, resources[0].plural) == ("", "pods")
    assert all(rt.namespaced for rt in resources)
    assert any(rt.plural == "leases" for rt in resources)


def test_ca_from_kubeconfig(tmp_path: Path) -> None:
    config = {"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k"}}],
              "clusters": [{"name": "k", "cluster": {
                  "server": "https://127.0.0.1:1",
                  "certificate-authority-data": base64.b64encode(CA).decode()}}]}
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(config))
    assert ca_pem_from_kubeconfig(path) == CA


# ---- controllers against a fake API


class Harness:
    def __init__(self) -> None:
        self.api = LifecycleFakeAPI()
        self.informers = SharedInformers(self.api)  # type: ignore[arg-type]
        self.events = EventBroadcaster(self.api)  # type: ignore[arg-type]
        ctx = ControllerContext(self.api, self.informers, self.events)  # type: ignore[arg-type]
        resources = [rt for rt in catalog.RESOURCES if rt.group in ("", "apps")
                     and rt.plural in ("pods", "configmaps", "replicasets", "serviceaccounts")]
        self.controllers = [NamespaceController(ctx, resources=resources),
                            ServiceAccountsController(ctx), RootCACertPublisher(ctx, CA)]
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.informers.start()
        await self.informers.wait_for_sync(2)
        self.tasks = [asyncio.create_task(c.run(2)) for c in self.controllers]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.informers.stop()

    def names(self, plural: str, namespace: str = "demo") -> list[str]:
        return [o["metadata"]["name"] for o in self.api.items(plural, namespace)]


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def harness() -> Any:
    h = Harness()
    await h.start()
    yield h
    await h.stop()


async def make_namespace(api: LifecycleFakeAPI, name: str = "demo") -> None:
    await api.create(NAMESPACES, {"metadata": {"name": name},
                                  "spec": {"finalizers": ["kubernetes"]},
                                  "status": {"phase": "Active"}})


async def test_new_namespaces_get_their_account_and_ca(harness: Harness) -> None:
    await make_namespace(harness.api)
    await eventually(lambda: harness.names("serviceaccounts") == ["default"])
    await eventually(lambda: harness.names("configmaps") == ["kube-root-ca.crt"])
    [cm] = harness.api.items("configmaps", "demo")
    assert cm["data"] == {"ca.crt": CA.decode()}
    assert cm["metadata"]["annotations"] == {DESCRIPTION_ANNOTATION: DESCRIPTION}
    # Deleted or edited, both come back.
    await harness.api.delete(SERVICE_ACCOUNTS, "default", "demo")
    await harness.api.patch(CMS, "kube-root-ca.crt", {"data": {"ca.crt": "tampered"}}, "demo")
    await eventually(lambda: harness.names("serviceaccounts") == ["default"])
    await eventually(lambda: harness.api.items("configmaps", "demo")[0]["data"]
                     == {"ca.crt": CA.decode()})


async def test_terminating_namespaces_get_no_new_account(harness: Harness) -> None:
    await harness.api.create(NAMESPACES, {"metadata": {"name": "going"},
                                          "status": {"phase": "Terminating"}})
    await asyncio.sleep(0.2)
    assert harness.names("serviceaccounts", "going") == []


async def test_a_deleted_namespace_is_emptied_pods_first_then_finalized(
        harness: Harness) -> None:
    await make_namespace(harness.api)
    await eventually(lambda: len(harness.names("configmaps")) == 1)
    await harness.api.create(CMS, {"metadata": {"name": "settings"}}, "demo")
    await harness.api.create(PODS, {"metadata": {"name": "web"},
                                    "spec": {"terminationGracePeriodSeconds": 30}}, "demo")
    harness.api.held.add(("pods", "web"))  # terminating on its node for a while
    await harness.api.delete(NAMESPACES, "demo")
    ns = harness.api.obj("namespaces", "", "demo")
    assert ns is not None and ns["status"]["phase"] == "Terminating"

    def condition(ctype: str) -> dict[str, Any]:
        current = harness.api.obj("namespaces", "", "demo") or {}
        return next((c for c in (current.get("status") or {}).get("conditions") or ()
                     if c["type"] == ctype), {})

    await eventually(lambda: condition("NamespaceContentRemaining").get("status") == "True")
    assert condition("NamespaceContentRemaining")["message"] == \
        "Some resources are remaining: pods. has 1 resource instances"
    assert condition("NamespaceDeletionDiscoveryFailure")["status"] == "False"
    # Nothing else is touched while a pod remains.
    assert sorted(harness.names("configmaps")) == ["kube-root-ca.crt", "settings"]
    await harness.api.finish(PODS, "web", "demo")
    await eventually(lambda: harness.api.obj("namespaces", "", "demo") is None)
    assert harness.names("configmaps") == [] and harness.names("serviceaccounts") == []
    assert ("replace/finalize", "namespaces", "demo") in harness.api.calls
