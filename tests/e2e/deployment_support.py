"""Seed manifests and small readers shared by the Deployment end-to-end tests.

The seed's Deployment lives in `examples/seed/` with namespace `demo`; tests
that must not collide on a shared cluster re-home it into their own namespace
with `seed_manifest(..., namespace=...)` and pass it to kubectl on stdin. The
readers turn kubectl's output into data: `get_object` parses `-o json`,
`managers` and `managed_entry` pick managedFields entries, `deleted_line`
matches what each kubectl version prints on delete.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import yaml

from tests.e2e.harness import Cluster

SEED_DIR = Path(__file__).resolve().parents[2] / "examples" / "seed"
DEPLOY_FILE = SEED_DIR / "deploy-demo.yaml"
DEPLOY_V2_FILE = SEED_DIR / "deploy-demo-v2.yaml"
DEPLOYMENT = "nginx-deployment-demo"
DEPLOYMENT_REF = f"deployment.apps/{DEPLOYMENT}"

DEPLOY_COLUMNS = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
DEPLOY_WIDE_COLUMNS = [*DEPLOY_COLUMNS, "CONTAINERS", "IMAGES", "SELECTOR"]
POD_COLUMNS = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
# kubectl's short age format: "0s", "5m3s", "2d4h", ...
AGE = re.compile(r"\d+[smhdy](\d+[smh])?")

Kubectl = Callable[..., CompletedProcess[str]]
JSON = dict[str, Any]

_SEED_NAMESPACE_LINE = re.compile(r"^(\s*namespace:\s*)demo\s*$", re.MULTILINE)


def seed_manifest(path: Path = DEPLOY_FILE, *, namespace: str = "demo") -> str:
    """The text of a seed manifest, with its `namespace: demo` moved to `namespace`."""
    return _SEED_NAMESPACE_LINE.sub(rf"\g<1>{namespace}", path.read_text())


def seed_object(path: Path = DEPLOY_FILE, *, namespace: str = "demo") -> JSON:
    """A seed manifest parsed into a dict, re-homed to `namespace`, for tests to vary."""
    obj: JSON = yaml.safe_load(seed_manifest(path, namespace=namespace))
    return obj


def namespace_for(test_name: str) -> str:
    """A DNS-1123 namespace name derived from a pytest node name."""
    name = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    return name[:63].rstrip("-")


def create_namespace(cluster: Cluster, test_name: str) -> str:
    """Create the namespace named after `test_name` and return its name."""
    namespace = namespace_for(test_name)
    cluster.kubectl("create", "namespace", namespace)
    return namespace


def get_object(
    kubectl: Kubectl, resource: str, name: str, namespace: str, *, managed: bool = False
) -> JSON:
    """One object as kubectl returns it with `-o json` (managedFields on request)."""
    extra = ["--show-managed-fields"] if managed else []
    result = kubectl("get", resource, name, "-n", namespace, "-o", "json", *extra)
    obj: JSON = json.loads(result.stdout)
    return obj


def managers(obj: JSON) -> dict[str, JSON]:
    """The object's managedFields entries keyed by manager name.

    A manager that both applies and updates has two entries; use
    `managed_entry` to tell them apart.
    """
    entries = obj["metadata"].get("managedFields", [])
    return {entry["manager"]: entry for entry in entries}


def managed_entry(obj: JSON, manager: str, operation: str, subresource: str = "") -> JSON:
    """The managedFields entry of `manager` for one operation and subresource."""
    wanted = (manager, operation, subresource)
    for entry in obj["metadata"].get("managedFields", []):
        if (entry["manager"], entry["operation"], entry.get("subresource", "")) == wanted:
            found: JSON = entry
            return found
    raise AssertionError(f"no {operation} entry for {manager!r} ({subresource or 'main'})")


def deleted_line(reference: str, namespace: str) -> re.Pattern[str]:
    """What `kubectl delete` prints; kubectl 1.34 also names the namespace."""
    return re.compile(rf"{re.escape(reference)} deleted( from {re.escape(namespace)} namespace)?")


def kubectl_user_agent_name(cluster: Cluster, version: str | None = None) -> str:
    """The field manager the server derives from this kubectl's User-Agent.

    Commands without a `--field-manager` default (such as `kubectl scale`) send
    none, and the API server names the manager after the User-Agent's program
    name, which is the kubectl binary's file name.
    """
    return Path(cluster.kubectl_argv(version=version)[0]).name
