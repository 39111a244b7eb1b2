"""Label and field selectors, sent by the real kubectl and evaluated by kubi.

A handful of pods with varied labels is created once; with no scheduler yet
they stay Pending, which also makes `status.phase=Pending` select them all.
Each selector from the seed and the issue is run through `kubectl get -l` and
must select exactly the pods upstream's selector semantics select (a missing
key satisfies `!=` and `notin`, never `in` or `=`).
"""

from __future__ import annotations

from functools import partial
from subprocess import CompletedProcess

import pytest

from tests.e2e.direct import Direct
from tests.e2e.harness import Cluster

# These tests are about the API server itself: no controller touches their objects.
CLUSTER_ARGS = ("--no-controllers",)

Kubectl = partial[CompletedProcess[str]]
NAMESPACE = "selectors"

PODS: dict[str, dict[str, str]] = {
    "prod-frontend": {"environment": "production", "tier": "frontend"},
    "prod-backend": {"environment": "production", "tier": "backend"},
    "qa-frontend": {"environment": "qa", "tier": "frontend"},
    "dev-cache": {"environment": "dev", "tier": "cache", "partition": "customerA"},
    "partitioned": {"partition": "customerB"},
    "unlabelled": {},
}


@pytest.fixture(scope="module")
def pods(cluster: Cluster) -> dict[str, dict[str, str]]:
    cluster.kubectl("create", "namespace", NAMESPACE)
    for name, labels in PODS.items():
        metadata = f"  name: {name}\n"
        if labels:
            metadata += "  labels:\n" + "".join(f"    {k}: {v}\n" for k, v in labels.items())
        manifest = (
            f"apiVersion: v1\nkind: Pod\nmetadata:\n{metadata}"
            "spec:\n  containers:\n  - name: main\n    image: busybox:1.28\n"
        )
        cluster.kubectl("create", "-n", NAMESPACE, "-f", "-", input=manifest)
    return PODS


def selected(kubectl: Kubectl, *args: str) -> set[str]:
    out = kubectl("get", "pods", "-n", NAMESPACE, *args, "-o", "name").stdout
    return {line.removeprefix("pod/") for line in out.split()}


@pytest.mark.kubectl_skew
@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("environment in (production),tier in (frontend)", {"prod-frontend"}),
        ("tier notin (frontend,backend)", {"dev-cache", "partitioned", "unlabelled"}),
        ("partition", {"dev-cache", "partitioned"}),
        ("!partition", {"prod-frontend", "prod-backend", "qa-frontend", "unlabelled"}),
        ("environment=production,tier=frontend", {"prod-frontend"}),
        ("environment==production", {"prod-frontend", "prod-backend"}),
        (
            "environment!=qa",
            {"prod-frontend", "prod-backend", "dev-cache", "partitioned", "unlabelled"},
        ),
        ("environment in (production, qa),tier!=backend", {"prod-frontend", "qa-frontend"}),
        ("partition in (customerA),!tier", set()),
        ("environment,environment notin (dev)", {"prod-frontend", "prod-backend", "qa-frontend"}),
    ],
)
def test_label_selector(
    kubectl: Kubectl, pods: dict[str, dict[str, str]], selector: str, expected: set[str]
) -> None:
    assert selected(kubectl, "-l", selector) == expected


def test_label_selector_on_the_seed_command_shape(
    kubectl: Kubectl, pods: dict[str, dict[str, str]]
) -> None:
    # The seed's `kubectl get pod -l label1=value1,label2=value2 -n my-namespace` form.
    out = kubectl("get", "pod", "-l", "environment=qa,tier=frontend", "-n", NAMESPACE).stdout
    assert [line.split()[0] for line in out.splitlines()] == ["NAME", "qa-frontend"]
    nothing = kubectl("get", "pod", "-l", "environment=staging", "-n", NAMESPACE)
    assert nothing.stdout == ""
    assert nothing.stderr.strip() == f"No resources found in {NAMESPACE} namespace."


def test_field_selectors(kubectl: Kubectl, pods: dict[str, dict[str, str]]) -> None:
    assert selected(kubectl, "--field-selector", "metadata.name=qa-frontend") == {"qa-frontend"}
    assert selected(kubectl, "--field-selector", "metadata.name!=qa-frontend") == (
        set(PODS) - {"qa-frontend"}
    )
    # No scheduler or node agent yet: every pod is still Pending.
    assert selected(kubectl, "--field-selector", "status.phase=Pending") == set(PODS)
    assert selected(kubectl, "--field-selector", "status.phase=Running") == set()
    assert selected(kubectl, "--field-selector", f"metadata.namespace={NAMESPACE}") == set(PODS)
    assert selected(kubectl, "--field-selector", "spec.nodeName=") == set(PODS)
    assert selected(
        kubectl, "-l", "tier=frontend", "--field-selector", "metadata.name!=prod-frontend"
    ) == {"qa-frontend"}


def test_field_selector_across_namespaces(
    kubectl: Kubectl, pods: dict[str, dict[str, str]]
) -> None:
    out = kubectl(
        "get", "pods", "-A", "--field-selector", f"metadata.namespace={NAMESPACE}", "-o", "name"
    ).stdout
    assert {line.removeprefix("pod/") for line in out.split()} == set(PODS)


def test_unsupported_field_selector_is_a_bad_request(
    cluster: Cluster, kubectl: Kubectl, pods: dict[str, dict[str, str]]
) -> None:
    failed = kubectl(
        "get", "pods", "-n", NAMESPACE, "--field-selector", "spec.foo=bar", check=False
    )
    assert failed.returncode != 0
    assert failed.stderr.strip() == (
        'Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match label '
        'selector "", field selector "spec.foo=bar": field label not supported: spec.foo'
    )

    reply = Direct(cluster).get(f"/api/v1/namespaces/{NAMESPACE}/pods?fieldSelector=spec.foo%3Dbar")
    assert reply.status == 400
    status = reply.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "BadRequest", 400)
    assert status["message"] == "field label not supported: spec.foo"


def test_malformed_label_selector_is_a_bad_request(
    cluster: Cluster, pods: dict[str, dict[str, str]]
) -> None:
    reply = Direct(cluster).get(
        f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=tier%20in%20frontend"
    )
    assert reply.status == 400
    status = reply.json()
    assert (status["kind"], status["reason"]) == ("Status", "BadRequest")


def test_secret_type_field_selector(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "selector-secrets")
    cluster.kubectl(
        "create", "secret", "generic", "opaque-one", "-n", "selector-secrets", "--from-literal=k=v"
    )
    cluster.kubectl(
        "create",
        "secret",
        "docker-registry",
        "pull-one",
        "-n",
        "selector-secrets",
        "--docker-server=registry.example",
        "--docker-username=u",
        "--docker-password=p",
    )
    out = cluster.kubectl(
        "get",
        "secrets",
        "-n",
        "selector-secrets",
        "-o",
        "name",
        "--field-selector",
        "type=kubernetes.io/dockerconfigjson",
    ).stdout
    assert out.split() == ["secret/pull-one"]
