"""`kubectl get -w` against kubi: a change made from another shell shows up.

Each test starts the watch in the background through the harness, makes a
change with a second kubectl, and waits (with a deadline) for the printed line.
A collection watch lists first and then watches from the list's
resourceVersion, so nothing can slip between the two; a single-object watch
prints a GET and then watches from resourceVersion 0, discarding the first
event, so the test repeats its change until one lands after the watch began.
No scheduler runs yet, so pods stay Pending.
"""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from tests.e2e.deployment_support import (
    AGE,
    DEPLOY_COLUMNS,
    DEPLOY_WIDE_COLUMNS,
    DEPLOYMENT,
    POD_COLUMNS,
    Kubectl,
    create_namespace,
    deleted_line,
    seed_manifest,
)
from tests.e2e.harness import Cluster
from tests.tools.background import Background, WaitTimeout

# These tests are about the API server itself: no controller touches their objects.
CLUSTER_ARGS = ("--no-controllers",)


def pod_manifest(name: str, namespace: str, labels: dict[str, str] | None = None) -> str:
    """A one-container pod, as JSON for kubectl's stdin."""
    metadata = {"name": name, "namespace": namespace, "labels": labels or {}}
    spec = {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})


def row_pattern(name: str, *cells: str) -> str:
    """A regex for a printed row starting with `name` then the given cells."""
    return r"^" + r"\s+".join([re.escape(name), *cells]) + r"(\s|$)"


def wait_for_header(watcher: Background, columns: list[str]) -> None:
    watcher.wait_for_line(r"^" + r"\s+".join(map(re.escape, columns)) + r"\s*$")


def change_until_printed(
    watcher: Background, kubectl: Kubectl, namespace: str, *, timeout: float = 30.0
) -> int:
    """Scale the seed Deployment to 4, 5, ... until the watch prints the new size.

    A change that lands before the single-object watch starts is folded into
    the initial event kubectl discards; any later change is printed.
    """
    deadline = time.monotonic() + timeout
    for replicas in itertools.count(4):
        kubectl("scale", "deploy", DEPLOYMENT, "-n", namespace, f"--replicas={replicas}")
        try:
            watcher.wait_for_line(row_pattern(DEPLOYMENT, rf"\d+/{replicas}"), timeout=2.0)
            return replicas
        except WaitTimeout:
            if time.monotonic() > deadline:
                raise
    raise AssertionError("unreachable")


@pytest.mark.kubectl_skew
def test_list_watch_prints_a_change_from_another_shell(
    cluster: Cluster, kubectl: Kubectl, kubectl_version: str, request: pytest.FixtureRequest
) -> None:
    namespace = create_namespace(cluster, request.node.name)
    kubectl("create", "-f", "-", input=seed_manifest(namespace=namespace))

    watcher = cluster.watch("deploy", "-n", namespace, version=kubectl_version)
    wait_for_header(watcher, DEPLOY_COLUMNS)
    first = watcher.wait_for_line(row_pattern(DEPLOYMENT, r"\d+/3"))
    listed = len(watcher.lines)

    kubectl("scale", "deploy", DEPLOYMENT, "-n", namespace, "--replicas=5")
    changed = watcher.wait_for_line(row_pattern(DEPLOYMENT, r"\d+/5"), start=listed)
    assert len(changed.split()) == len(first.split()) == len(DEPLOY_COLUMNS)
    assert AGE.fullmatch(changed.split()[-1])
    assert watcher.returncode is None  # the watch keeps running after the event

    # A deletion prints the object's last state once more.
    after_change = watcher.lines.index(changed) + 1
    kubectl("delete", "deploy", DEPLOYMENT, "-n", namespace)
    watcher.wait_for_line(row_pattern(DEPLOYMENT, r"\d+/5"), start=after_change)


def test_all_namespaces_wide_watch(cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    watcher = cluster.watch("deploy", "--all-namespaces", "-o", "wide")
    cluster.kubectl("create", "-f", "-", input=seed_manifest(namespace=namespace))

    wait_for_header(watcher, ["NAMESPACE", *DEPLOY_WIDE_COLUMNS])
    line = watcher.wait_for_line(row_pattern(namespace, re.escape(DEPLOYMENT), r"\d+/3"))
    assert line.split()[-3:] == ["nginx", "nginx:1.14.2", "app=nginx"]


@pytest.mark.kubectl_skew
def test_single_object_watch(
    cluster: Cluster, kubectl: Kubectl, kubectl_version: str, request: pytest.FixtureRequest
) -> None:
    namespace = create_namespace(cluster, request.node.name)
    kubectl("create", "-f", "-", input=seed_manifest(namespace=namespace))
    other = seed_manifest(namespace=namespace).replace(f"name: {DEPLOYMENT}", "name: other")
    kubectl("create", "-f", "-", input=other)

    watcher = cluster.watch("deploy", DEPLOYMENT, "-n", namespace, version=kubectl_version)
    wait_for_header(watcher, DEPLOY_COLUMNS)
    watcher.wait_for_line(row_pattern(DEPLOYMENT, r"\d+/3"))

    kubectl("scale", "deploy", "other", "-n", namespace, "--replicas=7")
    replicas = change_until_printed(watcher, kubectl, namespace)
    # Events are delivered in order, so a leak of the earlier change to
    # "other" would already be on screen.
    assert not [line for line in watcher.lines if line.startswith("other ")]
    assert watcher.lines[-1].split()[1].endswith(f"/{replicas}")


def test_pod_watch_on_an_empty_namespace(cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    watcher = cluster.watch("pods", "-n", namespace)
    events = cluster.watch("pods", "-n", namespace, "--output-watch-events")

    created = cluster.kubectl("create", "-f", "-", input=pod_manifest("web", namespace))
    assert created.stdout == "pod/web created\n"

    wait_for_header(watcher, POD_COLUMNS)
    line = watcher.wait_for_line(row_pattern("web", "0/1", "Pending", "0"))
    assert AGE.fullmatch(line.split()[-1])
    wait_for_header(events, ["EVENT", *POD_COLUMNS])
    events.wait_for_line(r"^ADDED\s+" + row_pattern("web", "0/1", "Pending", "0").lstrip("^"))

    # A pod bound to no node is removed at once, so the watch sees it vanish.
    deleted = cluster.kubectl("delete", "pod", "web", "-n", namespace).stdout
    assert deleted_line('pod "web"', namespace).fullmatch(deleted.rstrip("\n"))
    events.wait_for_line(r"^DELETED\s+web\s")
    # Without --output-watch-events the deletion prints the pod's row once more.
    after_first = watcher.lines.index(line) + 1
    watcher.wait_for_line(row_pattern("web", "0/1"), start=after_first)


def test_label_selected_pod_watch(cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    watcher = cluster.watch("pods", "-n", namespace, "-l", "app=nginx")

    cluster.kubectl("create", "-f", "-", input=pod_manifest("plain", namespace))
    labelled = pod_manifest("labelled", namespace, {"app": "nginx"})
    cluster.kubectl("create", "-f", "-", input=labelled)

    watcher.wait_for_line(row_pattern("labelled", "0/1", "Pending"))
    # "plain" was created first, so had the selector let it through it would show by now.
    assert not [line for line in watcher.lines if line.startswith("plain ")]
