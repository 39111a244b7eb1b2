"""Patches, client- and server-side apply and server dry runs of the seed Deployment.

`kubectl patch` in its three flavours (JSON patch, merge patch, strategic merge
patch) including `patched (no change)`; client-side apply's three-way merge;
`kubectl apply --server-side` with its managedFields, the takeover from
client-side apply, a conflict between two field managers over `spec.replicas`,
co-ownership, `--force-conflicts`, `kubectl scale` taking the field over, and
appliers sharing a list by merge key; and `--dry-run=server` on create, apply,
scale, label, patch and delete, which must answer like the real thing and store
nothing. One kubi serves the module and every test works in its own namespace.
"""

from __future__ import annotations

import copy
import json
from functools import partial
from subprocess import CompletedProcess

import pytest

from tests.e2e.deployment_support import (
    DEPLOYMENT,
    DEPLOYMENT_REF,
    JSON,
    Kubectl,
    create_namespace,
    deleted_line,
    get_object,
    kubectl_user_agent_name,
    managed_entry,
    managers,
    seed_manifest,
    seed_object,
)
from tests.e2e.harness import Cluster

# These tests are about the API server itself: no controller touches their objects.
CLUSTER_ARGS = ("--no-controllers",)

NOT_FOUND = f'Error from server (NotFound): deployments.apps "{DEPLOYMENT}" not found'


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    return create_namespace(cluster, request.node.name)


@pytest.fixture
def deployed(cluster: Cluster, namespace: str) -> str:
    """The seed Deployment created with `kubectl create` in the test's namespace."""
    cluster.kubectl("create", "-f", "-", input=seed_manifest(namespace=namespace))
    return namespace


def with_replicas(namespace: str, replicas: int) -> str:
    """The seed manifest re-homed to `namespace`, asking for `replicas` replicas."""
    manifest = seed_object(namespace=namespace)
    manifest["spec"]["replicas"] = replicas
    return json.dumps(manifest)


def live(kubectl: Kubectl, namespace: str, *, managed: bool = False) -> JSON:
    return get_object(kubectl, "deploy", DEPLOYMENT, namespace, managed=managed)


def pod_spec_patch(pod_spec: JSON) -> str:
    """A patch body that touches only the template's pod spec."""
    return json.dumps({"spec": {"template": {"spec": pod_spec}}})


def owns_replicas(entry: JSON) -> bool:
    return "f:replicas" in entry.get("fieldsV1", {}).get("f:spec", {})


# -- kubectl patch -------------------------------------------------------------------


def test_json_patch(cluster: Cluster, deployed: str) -> None:
    kubectl = cluster.kubectl
    patch = partial(kubectl, "patch", "deploy", DEPLOYMENT, "-n", deployed, "--type=json")

    ops = json.dumps(
        [
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
        ]
    )
    assert patch("-p", ops).stdout == f"{DEPLOYMENT_REF} patched\n"
    patched = live(kubectl, deployed, managed=True)
    assert patched["spec"]["replicas"] == 2
    assert patched["metadata"]["labels"] == {"app": "nginx", "tier": "web"}
    assert patched["metadata"]["generation"] == 2
    assert managers(patched)["kubectl-patch"]["operation"] == "Update"

    assert patch("-p", ops).stdout == f"{DEPLOYMENT_REF} patched (no change)\n"
    version = patched["metadata"]["resourceVersion"]
    assert live(kubectl, deployed)["metadata"]["resourceVersion"] == version

    failed = patch("-p", '[{"op":"test","path":"/spec/replicas","value":7}]', check=False)
    assert failed.returncode == 1
    # Upstream answers any failed operation with a bare 422 Invalid Status.
    assert failed.stderr.startswith("The request is invalid")
    assert live(kubectl, deployed)["metadata"]["resourceVersion"] == version


def test_merge_patch_replaces_lists(cluster: Cluster, deployed: str) -> None:
    kubectl = cluster.kubectl
    patch = partial(kubectl, "patch", "deploy", DEPLOYMENT, "-n", deployed, "--type=merge")

    assert patch("-p", '{"spec":{"minReadySeconds":5}}').stdout == f"{DEPLOYMENT_REF} patched\n"
    assert patch("-p", '{"spec":{"minReadySeconds":5}}').stdout == (
        f"{DEPLOYMENT_REF} patched (no change)\n"
    )
    assert live(kubectl, deployed)["spec"]["minReadySeconds"] == 5

    # A merge patch has no merge keys: the containers list is replaced whole,
    # so the container loses the ports the patch does not repeat.
    containers = pod_spec_patch({"containers": [{"name": "nginx", "image": "nginx:1.25"}]})
    assert patch("-p", containers).stdout == f"{DEPLOYMENT_REF} patched\n"
    (container,) = live(kubectl, deployed)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx:1.25"
    assert "ports" not in container

    patch("-p", '{"metadata":{"labels":{"app":null,"tier":"web"}}}')
    assert live(kubectl, deployed)["metadata"]["labels"] == {"tier": "web"}


def test_strategic_merge_patch(cluster: Cluster, deployed: str) -> None:
    kubectl = cluster.kubectl
    patch = partial(kubectl, "patch", "deploy", DEPLOYMENT, "-n", deployed)

    # Containers merge on their name: only the image changes, the ports stay.
    image = pod_spec_patch({"containers": [{"name": "nginx", "image": "nginx:1.25"}]})
    assert patch("-p", image).stdout == f"{DEPLOYMENT_REF} patched\n"
    assert patch("--type=strategic", "-p", image).stdout == (
        f"{DEPLOYMENT_REF} patched (no change)\n"
    )
    (container,) = live(kubectl, deployed)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx:1.25"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]

    sidecar = pod_spec_patch({"containers": [{"name": "sidecar", "image": "busybox:1.36"}]})
    patch("-p", sidecar)
    containers = live(kubectl, deployed)["spec"]["template"]["spec"]["containers"]
    assert sorted(c["name"] for c in containers) == ["nginx", "sidecar"]

    delete = pod_spec_patch({"containers": [{"name": "sidecar", "$patch": "delete"}]})
    patch("-p", delete)
    containers = live(kubectl, deployed)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["nginx"]

    # Tolerations carry no merge key upstream, so a patch replaces the list.
    patch("-p", pod_spec_patch({"tolerations": [{"key": "a", "operator": "Exists"}]}))
    patch("-p", pod_spec_patch({"tolerations": [{"key": "b", "operator": "Exists"}]}))
    tolerations = live(kubectl, deployed)["spec"]["template"]["spec"]["tolerations"]
    assert tolerations == [{"key": "b", "operator": "Exists"}]

    # Strategy carries $retainKeys upstream: switching to Recreate drops rollingUpdate.
    recreate = '{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}'
    patch("-p", recreate)
    assert live(kubectl, deployed)["spec"]["strategy"] == {"type": "Recreate"}


# -- client-side apply ---------------------------------------------------------------


def test_client_side_apply_merges_three_ways(cluster: Cluster, namespace: str) -> None:
    kubectl = cluster.kubectl
    manifest = seed_object(namespace=namespace)
    apply = partial(kubectl, "apply", "-f", "-")
    assert apply(input=json.dumps(manifest)).stdout == f"{DEPLOYMENT_REF} created\n"
    assert apply(input=json.dumps(manifest)).stdout == f"{DEPLOYMENT_REF} unchanged\n"

    # Changes made by others: a field the manifest sets is taken back, one it
    # never mentioned is left alone.
    kubectl("scale", "deploy", DEPLOYMENT, "-n", namespace, "--replicas=5")
    kubectl("label", "deploy", DEPLOYMENT, "-n", namespace, "extra=yes")
    assert apply(input=json.dumps(manifest)).stdout == f"{DEPLOYMENT_REF} configured\n"
    reverted = live(kubectl, namespace)
    assert reverted["spec"]["replicas"] == 3
    assert reverted["metadata"]["labels"] == {"app": "nginx", "extra": "yes"}

    grown = copy.deepcopy(manifest)
    grown["metadata"]["labels"]["tier"] = "web"
    del grown["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert apply(input=json.dumps(grown)).stdout == f"{DEPLOYMENT_REF} configured\n"
    changed = live(kubectl, namespace)
    assert changed["metadata"]["labels"] == {"app": "nginx", "extra": "yes", "tier": "web"}
    assert "ports" not in changed["spec"]["template"]["spec"]["containers"][0]

    # Dropping a field from the manifest removes it, because the last applied
    # configuration shows it was the manifest's.
    assert apply(input=json.dumps(manifest)).stdout == f"{DEPLOYMENT_REF} configured\n"
    restored = live(kubectl, namespace)
    assert restored["metadata"]["labels"] == {"app": "nginx", "extra": "yes"}
    (container,) = restored["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


# -- server-side apply ---------------------------------------------------------------


@pytest.mark.kubectl_skew
def test_server_side_apply_creates_with_managed_fields(
    cluster: Cluster, kubectl: Kubectl, request: pytest.FixtureRequest
) -> None:
    namespace = create_namespace(cluster, request.node.name)
    manifest = seed_manifest(namespace=namespace)
    applied = kubectl("apply", "--server-side", "-f", "-", input=manifest)
    assert applied.stdout == f"{DEPLOYMENT_REF} serverside-applied\n"

    created = live(kubectl, namespace, managed=True)
    assert created["spec"]["replicas"] == 3
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"
    entry = managers(created)["kubectl"]
    assert entry["operation"] == "Apply"
    assert entry["apiVersion"] == "apps/v1"
    assert entry["fieldsType"] == "FieldsV1"
    fields = entry["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert "f:replicas" in fields["f:spec"]
    # An applier owns what it sent, not the defaults the server filled in.
    assert "f:strategy" not in fields["f:spec"]
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert "f:image" in container

    get_yaml = partial(kubectl, "get", "deploy", DEPLOYMENT, "-n", namespace, "-o", "yaml")
    shown = get_yaml("--show-managed-fields")
    assert "managedFields:" in shown.stdout and "manager: kubectl\n" in shown.stdout
    assert "operation: Apply" in shown.stdout
    assert "managedFields" not in get_yaml().stdout

    version = created["metadata"]["resourceVersion"]
    again = kubectl("apply", "--server-side", "-f", "-", input=manifest)
    assert again.stdout == f"{DEPLOYMENT_REF} serverside-applied\n"
    assert live(kubectl, namespace)["metadata"]["resourceVersion"] == version


def test_server_side_apply_takes_over_from_client_side_apply(
    cluster: Cluster, namespace: str
) -> None:
    kubectl = cluster.kubectl
    manifest = seed_manifest(namespace=namespace)
    kubectl("apply", "-f", "-", input=manifest)
    assert set(managers(live(kubectl, namespace, managed=True))) == {"kubectl-client-side-apply"}

    # kubectl rewrites managedFields with a JSON patch so that the fields the
    # client-side applier owned pass to the server-side one.
    applied = kubectl("apply", "--server-side", "-f", "-", input=manifest)
    assert applied.stdout == f"{DEPLOYMENT_REF} serverside-applied\n"
    owners = managers(live(kubectl, namespace, managed=True))
    assert "kubectl-client-side-apply" not in owners
    assert owners["kubectl"]["operation"] == "Apply"
    assert owns_replicas(owners["kubectl"])


def test_conflicting_manager_is_named_and_force_takes_over(
    cluster: Cluster, namespace: str
) -> None:
    kubectl = cluster.kubectl
    apply = partial(kubectl, "apply", "--server-side", "-f", "-")
    apply(input=with_replicas(namespace, 3))
    before = live(kubectl, namespace)

    conflict = apply("--field-manager=other", input=with_replicas(namespace, 6), check=False)
    assert conflict.returncode == 1
    expected = 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas'
    assert expected in conflict.stderr
    assert "--force-conflicts" in conflict.stderr
    after = live(kubectl, namespace)
    assert after["spec"]["replicas"] == 3
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    forced = apply("--field-manager=other", "--force-conflicts", input=with_replicas(namespace, 6))
    assert forced.stdout == f"{DEPLOYMENT_REF} serverside-applied\n"
    taken = live(kubectl, namespace, managed=True)
    assert taken["spec"]["replicas"] == 6
    owners = managers(taken)
    assert owns_replicas(owners["other"])
    assert not owns_replicas(owners["kubectl"])
    assert owners["other"]["operation"] == "Apply"


def test_server_side_apply_removes_what_it_stops_managing(cluster: Cluster, namespace: str) -> None:
    kubectl = cluster.kubectl
    apply = partial(kubectl, "apply", "--server-side", "-f", "-")
    manifest = seed_object(namespace=namespace)
    grown = copy.deepcopy(manifest)
    grown["metadata"]["labels"]["tier"] = "web"
    del grown["spec"]["template"]["spec"]["containers"][0]["ports"]

    apply(input=json.dumps(manifest))
    kubectl("label", "deploy", DEPLOYMENT, "-n", namespace, "extra=yes")
    apply(input=json.dumps(grown))
    changed = live(kubectl, namespace)
    assert changed["metadata"]["labels"] == {"app": "nginx", "extra": "yes", "tier": "web"}
    assert "ports" not in changed["spec"]["template"]["spec"]["containers"][0]

    apply(input=json.dumps(manifest))
    restored = live(kubectl, namespace, managed=True)
    # "extra" belongs to kubectl-label, so the applier leaving it out removes nothing.
    assert restored["metadata"]["labels"] == {"app": "nginx", "extra": "yes"}
    (container,) = restored["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert set(managers(restored)) == {"kubectl", "kubectl-label"}


def test_appliers_share_a_list_by_merge_key(cluster: Cluster, namespace: str) -> None:
    kubectl = cluster.kubectl
    apply = partial(kubectl, "apply", "--server-side", "-f", "-")
    manifest = json.dumps(seed_object(namespace=namespace))
    metadata = {"name": DEPLOYMENT, "namespace": namespace}
    identity: JSON = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata}
    sidecar = {"name": "sidecar", "image": "busybox:1.36"}
    side = json.dumps({**identity, "spec": {"template": {"spec": {"containers": [sidecar]}}}})

    def container_names() -> list[str]:
        containers = live(kubectl, namespace)["spec"]["template"]["spec"]["containers"]
        return sorted(c["name"] for c in containers)

    apply(input=manifest)
    apply("--field-manager=side", input=side)
    assert container_names() == ["nginx", "sidecar"]
    # Each applier keeps the container it owns when it re-applies.
    apply(input=manifest)
    assert container_names() == ["nginx", "sidecar"]
    apply("--field-manager=side", input=json.dumps(identity))
    assert container_names() == ["nginx"]


def test_managed_fields_reset_with_one_empty_entry(cluster: Cluster, deployed: str) -> None:
    kubectl = cluster.kubectl
    assert managers(live(kubectl, deployed, managed=True))
    reset = '{"metadata":{"managedFields":[{}]}}'
    kubectl("patch", "deploy", DEPLOYMENT, "-n", deployed, "--type=merge", "-p", reset)
    assert "managedFields" not in live(kubectl, deployed, managed=True)["metadata"]


def test_same_value_is_shared_without_conflict(cluster: Cluster, namespace: str) -> None:
    kubectl = cluster.kubectl
    apply = partial(kubectl, "apply", "--server-side", "-f", "-")
    apply(input=with_replicas(namespace, 3))

    shared = apply("--field-manager=other", input=with_replicas(namespace, 3))
    assert shared.stdout == f"{DEPLOYMENT_REF} serverside-applied\n"
    owners = managers(live(kubectl, namespace, managed=True))
    assert owns_replicas(owners["kubectl"]) and owns_replicas(owners["other"])


def test_scale_takes_replicas_from_the_applier(cluster: Cluster, namespace: str) -> None:
    kubectl = cluster.kubectl
    apply = partial(kubectl, "apply", "--server-side", "-f", "-")
    apply(input=with_replicas(namespace, 3))

    # Updates never conflict: scale simply becomes the owner of spec.replicas.
    kubectl("scale", "deploy", DEPLOYMENT, "-n", namespace, "--replicas=5")
    scaled = live(kubectl, namespace, managed=True)
    # kubectl scale names no field manager, so the server takes the User-Agent's.
    scaler = kubectl_user_agent_name(cluster)
    assert owns_replicas(managed_entry(scaled, scaler, "Update", "scale"))
    assert not owns_replicas(managed_entry(scaled, "kubectl", "Apply"))

    conflict = apply(input=with_replicas(namespace, 3), check=False)
    assert conflict.returncode == 1
    expected = (
        f'Apply failed with 1 conflict: conflict with "{scaler}" with subresource "scale" '
        "using apps/v1: .spec.replicas"
    )
    assert expected in conflict.stderr
    assert live(kubectl, namespace)["spec"]["replicas"] == 5

    apply("--force-conflicts", input=with_replicas(namespace, 3))
    assert live(kubectl, namespace)["spec"]["replicas"] == 3


# -- --dry-run=server ----------------------------------------------------------------


def test_dry_run_server_changes_nothing(cluster: Cluster, namespace: str) -> None:
    kubectl = cluster.kubectl
    manifest = seed_manifest(namespace=namespace)

    def dry_run(*args: str, input: str | None = None) -> CompletedProcess[str]:
        return kubectl(*args, "--dry-run=server", input=input)

    created = dry_run("create", "-f", "-", "-o", "yaml", input=manifest)
    assert "type: RollingUpdate" in created.stdout  # answered with the defaulted object
    writes = [
        dry_run("create", "-f", "-", input=manifest).stdout,
        dry_run("apply", "-f", "-", input=manifest).stdout,
        dry_run("apply", "--server-side", "-f", "-", input=manifest).stdout,
    ]
    assert writes == [
        f"{DEPLOYMENT_REF} created (server dry run)\n",
        f"{DEPLOYMENT_REF} created (server dry run)\n",
        f"{DEPLOYMENT_REF} serverside-applied (server dry run)\n",
    ]
    absent = kubectl("get", "deploy", DEPLOYMENT, "-n", namespace, check=False)
    assert absent.returncode == 1
    assert NOT_FOUND in absent.stderr

    kubectl("create", "-f", "-", input=manifest)
    stored = live(kubectl, namespace, managed=True)
    on_object = ("deploy", DEPLOYMENT, "-n", namespace)
    changed = with_replicas(namespace, 7)
    writes = [
        dry_run("apply", "--server-side", "--force-conflicts", "-f", "-", input=changed).stdout,
        dry_run("scale", *on_object, "--replicas=9").stdout,
        dry_run("label", *on_object, "tier=web").stdout,
        dry_run("patch", *on_object, "-p", '{"spec":{"replicas":8}}').stdout,
    ]
    assert writes == [
        f"{DEPLOYMENT_REF} serverside-applied (server dry run)\n",
        f"{DEPLOYMENT_REF} scaled (server dry run)\n",
        f"{DEPLOYMENT_REF} labeled (server dry run)\n",
        # patch resets its printer's operation, so upstream prints no dry-run suffix here.
        f"{DEPLOYMENT_REF} patched\n",
    ]
    deleted = dry_run("delete", *on_object).stdout
    assert deleted_line(f'deployment.apps "{DEPLOYMENT}"', namespace).fullmatch(
        deleted.removesuffix(" (server dry run)\n")
    )
    assert live(kubectl, namespace, managed=True) == stored
