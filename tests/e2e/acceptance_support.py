"""What the controllers' acceptance tests read back from kubectl, as data.

`kubectl get pod -w --output-watch-events` prints one table row per change,
in the order the API server sent them; `watch_rows` turns those lines into
`WatchRow`s and `replay` folds them into the set of pods alive after each
change, which is what the rollout rules are stated on: how many pods count
against maxSurge (not terminating, not finished) and how many are available.
The manifests the seed does not provide (a ReplicationController, a
ReplicaSet with set-based selectors, workloads that tolerate an unreachable
node for a few seconds) are built here as plain dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.e2e.harness import Cluster

JSON = dict[str, Any]

# STATUS cells of pods that no longer count towards a workload: deletion has
# begun, or the containers have finished.
GOING_STATUSES = frozenset({"Terminating", "Completed", "Error", "Unknown"})


@dataclass(frozen=True)
class WatchRow:
    """One line of `kubectl get pod -w --output-watch-events`."""

    event: str
    name: str
    ready: str
    status: str

    @property
    def counted(self) -> bool:
        """Whether this pod counts against maxSurge (upstream skips terminating pods)."""
        return self.status not in GOING_STATUSES

    @property
    def available(self) -> bool:
        """Running with every container ready, and not on its way out (minReadySeconds 0)."""
        ready, _, total = self.ready.partition("/")
        return self.counted and self.status == "Running" and ready == total


def watch_rows(lines: list[str]) -> list[WatchRow]:
    """The data rows of a watch's output, headers (printed once per table) skipped."""
    rows = []
    for line in lines:
        cells = line.split()
        if len(cells) < 4 or cells[0] == "EVENT":
            continue
        rows.append(WatchRow(*cells[:4]))
    return rows


def replay(rows: list[WatchRow]) -> Iterator[dict[str, WatchRow]]:
    """The pods alive (latest row of each) after every change, in order."""
    alive: dict[str, WatchRow] = {}
    for row in rows:
        if row.event == "DELETED":
            alive.pop(row.name, None)
        else:
            alive[row.name] = row
        yield dict(alive)


def counted(state: dict[str, WatchRow], prefix: str = "") -> int:
    return sum(row.counted for name, row in state.items() if name.startswith(prefix))


def available(state: dict[str, WatchRow], prefix: str = "") -> int:
    return sum(row.available for name, row in state.items() if name.startswith(prefix))


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def pods_by_name(cluster: Cluster, namespace: str, *selector: str) -> dict[str, JSON]:
    listed = get_json(cluster, "pods", "-n", namespace, *selector)["items"]
    return {pod["metadata"]["name"]: pod for pod in listed}


def is_ready(obj: JSON) -> bool:
    """A pod's or a node's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def ready_nodes(cluster: Cluster) -> list[str]:
    nodes = get_json(cluster, "nodes")["items"]
    return sorted(n["metadata"]["name"] for n in nodes if is_ready(n))


def condition_time(obj: JSON, kind: str) -> str:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return str(condition.get("lastTransitionTime", ""))
    raise AssertionError(f"no {kind} condition in {obj['metadata']['name']}")


def nginx_template(labels: dict[str, str], image: str = "nginx:1.14.2") -> JSON:
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "nginx", "image": image,
                                     "ports": [{"containerPort": 80}]}]}}


def replication_controller(namespace: str, replicas: int = 3) -> JSON:
    return {"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "nginx-rc", "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"app": "nginx-rc"},
                     "template": nginx_template({"app": "nginx-rc"})}}


# Matches tier=frontend pods whose env is neither dev nor test and that carry
# a release label at all.
SET_BASED_SELECTOR: JSON = {"matchExpressions": [
    {"key": "tier", "operator": "In", "values": ["frontend"]},
    {"key": "env", "operator": "NotIn", "values": ["dev", "test"]},
    {"key": "release", "operator": "Exists"}]}


def set_based_replica_set(namespace: str, replicas: int = 3) -> JSON:
    labels = {"tier": "frontend", "env": "prod", "release": "stable"}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "frontend", "namespace": namespace},
            "spec": {"replicas": replicas, "selector": SET_BASED_SELECTOR,
                     "template": nginx_template(labels)}}


def bare_pod(namespace: str, name: str, labels: dict[str, str]) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": nginx_template(labels)["spec"]}


def short_tolerations(seconds: int) -> list[JSON]:
    """Leave an unreachable or not-ready node after `seconds` instead of the default 300."""
    return [{"key": f"node.kubernetes.io/{key}", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": seconds} for key in ("unreachable", "not-ready")]


def tolerant_deployment(namespace: str, replicas: int, seconds: int) -> JSON:
    template = nginx_template({"app": "survivor"})
    template["spec"]["tolerations"] = short_tolerations(seconds)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "survivor", "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "survivor"}},
                     "template": template}}


def tolerant_statefulset(namespace: str, replicas: int, seconds: int) -> JSON:
    template = nginx_template({"app": "db"})
    template["spec"]["tolerations"] = short_tolerations(seconds)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": namespace},
            "spec": {"replicas": replicas, "serviceName": "db",
                     "selector": {"matchLabels": {"app": "db"}}, "template": template}}
