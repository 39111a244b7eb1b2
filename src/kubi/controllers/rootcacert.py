"""The root CA publisher: a `kube-root-ca.crt` ConfigMap in every namespace.

Pods verify the API server with the cluster CA; upstream publishes it in
each namespace as ConfigMap `kube-root-ca.crt` (key `ca.crt`, with a
`kubernetes.io/description` annotation), which projected service account
volumes mount. Keyed by namespace: a namespace added (or updated while
Active) and the ConfigMap changed or deleted queue the namespace; the sync
creates the ConfigMap, or puts back its data and annotation when someone
edited them. The CA comes in as PEM bytes (`ca_pem_from_kubeconfig` reads it
from a kubeconfig, for standalone runs).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.controllers.base import QueueController
from kubi.controllers.events import NAMESPACE_TERMINATING_CAUSE, has_status_cause
from kubi.controllers.manager import ControllerContext
from kubi.controllers.namespace import NAMESPACES

Obj = dict[str, Any]

CONFIGMAPS = Resource("", "v1", "configmaps", True, "ConfigMap")
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
# The annotation text is what clients see; it is upstream's, word for word.
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
               "internal endpoints such as the internal service IP or kubernetes.default.svc. "
               "No other usage is guaranteed across distributions of Kubernetes clusters.")


def desired_data(ca_pem: bytes) -> dict[str, str]:
    return {"ca.crt": ca_pem.decode()}


def needs_update(configmap: Obj, data: dict[str, str]) -> bool:
    annotations = (configmap.get("metadata") or {}).get("annotations") or {}
    return configmap.get("data") != data or not annotations.get(DESCRIPTION_ANNOTATION)


def ca_pem_from_kubeconfig(path: str | Path) -> bytes:
    """The cluster CA of a kubeconfig's current context (inline data or a file)."""
    doc = yaml.safe_load(Path(path).read_text())
    context_name = doc.get("current-context")
    context = next(c["context"] for c in doc["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    return (Path(path).parent / cluster["certificate-authority"]).read_bytes()


class RootCACertPublisher(QueueController):
    name = "root-ca-cert-publisher"
    workers = 1

    def __init__(self, ctx: ControllerContext, ca_pem: bytes) -> None:
        super().__init__()
        self.client = ctx.client
        self.data = desired_data(ca_pem)
        self.configmaps = ctx.informers.get(CONFIGMAPS)
        namespaces = ctx.informers.get(NAMESPACES)
        namespaces.on_add(lambda ns: self.queue.add(ns["metadata"]["name"]))
        namespaces.on_update(self._namespace_updated)
        self.configmaps.on_update(lambda old, new: self._configmap_changed(new))
        self.configmaps.on_delete(self._configmap_changed)

    def _namespace_updated(self, old: Obj, ns: Obj) -> None:
        if (ns.get("status") or {}).get("phase", "Active") == "Active":
            self.queue.add(ns["metadata"]["name"])

    def _configmap_changed(self, configmap: Obj) -> None:
        md = configmap.get("metadata") or {}
        if md.get("name") == ROOT_CA_CONFIGMAP:
            self.queue.add(md.get("namespace", ""))

    async def sync(self, key: str) -> None:
        current = self.configmaps.get(f"{key}/{ROOT_CA_CONFIGMAP}")
        if current is None:
            try:
                await self.client.create(CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": key,
                                 "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": self.data}, key)
            except StatusError as err:
                # Not retried when the namespace is gone or going away.
                if err.code == 404 or has_status_cause(err, NAMESPACE_TERMINATING_CAUSE):
                    return
                raise
            return
        if not needs_update(current, self.data):
            return
        md = dict(current["metadata"])
        md["annotations"] = {**(md.get("annotations") or {}),
                             DESCRIPTION_ANNOTATION: DESCRIPTION}
        await self.client.replace(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                               **current, "metadata": md, "data": self.data})


def root_ca_publisher(ctx: ControllerContext, ca_pem: bytes) -> RootCACertPublisher:
    """Build with `functools.partial(root_ca_publisher, ca_pem=...)` as a factory."""
    return RootCACertPublisher(ctx, ca_pem)
