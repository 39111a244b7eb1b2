"""The seed's Deployment walkthrough, driven through the real kubectl.

Covers what a user of the tutorial types: `create ns demo`, `create -f`, `get`
with upstream's columns (and `-o wide`), `apply -f` of the v2 manifest
(`configured`, then `unchanged`), `edit` with a scripted editor, `scale`,
`label`, `annotate`, and the defaults upstream v1.33 fills in. One kubi serves
the module; every test but the seed walkthrough works in its own namespace.
No controller runs yet, so the tests assert the spec and metadata, never the
status counts a Deployment controller would report.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import pytest
import yaml

from tests.e2e import tables
from tests.e2e.deployment_support import (
    AGE,
    DEPLOY_COLUMNS,
    DEPLOY_FILE,
    DEPLOY_V2_FILE,
    DEPLOY_WIDE_COLUMNS,
    DEPLOYMENT,
    DEPLOYMENT_REF,
    Kubectl,
    create_namespace,
    get_object,
    kubectl_user_agent_name,
    managed_entry,
    managers,
    seed_manifest,
)
from tests.e2e.harness import Cluster

# These tests are about the API server itself: no controller touches their objects.
CLUSTER_ARGS = ("--no-controllers",)

# The seed Deployment's cells in the columns `-o wide` adds.
WIDE_CELLS = {"CONTAINERS": "nginx", "IMAGES": "nginx:1.14.2", "SELECTOR": "app=nginx"}

# kubectl 1.33's text when client-side apply meets an object made by plain `create`.
MISSING_ANNOTATION_WARNING = (
    "Warning: resource deployments/nginx-deployment-demo is missing the "
    "kubectl.kubernetes.io/last-applied-configuration annotation which is required by "
    "kubectl apply. kubectl apply should only be used on resources created declaratively "
    "by either kubectl create --save-config or kubectl apply. The missing annotation will "
    "be patched automatically."
)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    return create_namespace(cluster, request.node.name)


@pytest.fixture
def deployed(cluster: Cluster, namespace: str) -> str:
    """The seed Deployment created with `kubectl create` in the test's namespace."""
    cluster.kubectl("create", "-f", "-", input=seed_manifest(namespace=namespace))
    return namespace


def generation_and_version(kubectl: Kubectl, namespace: str) -> tuple[int, str]:
    meta = get_object(kubectl, "deploy", DEPLOYMENT, namespace)["metadata"]
    return int(meta["generation"]), str(meta["resourceVersion"])


def test_seed_walkthrough_create_get_apply(cluster: Cluster) -> None:
    kubectl = cluster.kubectl
    assert kubectl("create", "ns", "demo").stdout == "namespace/demo created\n"
    empty = kubectl("get", "deploy", "-n", "demo")
    assert (empty.stdout, empty.stderr) == ("", "No resources found in demo namespace.\n")
    created = kubectl("create", "-f", str(DEPLOY_FILE))
    assert created.stdout == f"{DEPLOYMENT_REF} created\n"

    listed = kubectl("get", "deploy", "-n", "demo").stdout
    assert tables.columns(listed) == DEPLOY_COLUMNS
    (row,) = tables.rows(listed)
    assert row["NAME"] == DEPLOYMENT
    assert row["READY"].endswith("/3")
    assert row["UP-TO-DATE"].isdigit() and row["AVAILABLE"].isdigit()
    assert AGE.fullmatch(row["AGE"])

    wide = kubectl("get", "deploy", "-n", "demo", "-o", "wide").stdout
    assert tables.columns(wide) == DEPLOY_WIDE_COLUMNS
    wide_row = tables.by_name(wide)[DEPLOYMENT]
    assert {column: wide_row[column] for column in WIDE_CELLS} == WIDE_CELLS

    applied = kubectl("apply", "-f", str(DEPLOY_V2_FILE))
    assert applied.stdout == f"{DEPLOYMENT_REF} configured\n"
    assert MISSING_ANNOTATION_WARNING in applied.stderr
    live = get_object(kubectl, "deploy", DEPLOYMENT, "demo", managed=True)
    assert set(managers(live)) == {"kubectl-create", "kubectl-client-side-apply"}
    template = live["spec"]["template"]
    assert template["metadata"]["labels"] == {"app": "nginx", "version": "v2"}
    assert template["spec"]["containers"][0]["image"] == "nginx:1.19.2"
    last_applied = json.loads(
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert last_applied["spec"]["template"]["metadata"]["labels"]["version"] == "v2"
    assert live["metadata"]["generation"] == 2

    again = kubectl("apply", "-f", str(DEPLOY_V2_FILE))
    assert again.stdout == f"{DEPLOYMENT_REF} unchanged\n"
    assert "Warning" not in again.stderr
    unchanged = get_object(kubectl, "deploy", DEPLOYMENT, "demo")["metadata"]
    assert unchanged["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert unchanged["generation"] == 2


@pytest.mark.kubectl_skew
def test_create_apply_get_across_kubectl_versions(
    cluster: Cluster, kubectl: Kubectl, request: pytest.FixtureRequest
) -> None:
    namespace = create_namespace(cluster, request.node.name)
    created = kubectl("create", "-f", "-", input=seed_manifest(namespace=namespace))
    assert created.stdout == f"{DEPLOYMENT_REF} created\n"

    wide = kubectl("get", "deploy", "-n", namespace, "-o", "wide").stdout
    assert tables.columns(wide) == DEPLOY_WIDE_COLUMNS
    (row,) = tables.rows(wide)
    assert row["NAME"] == DEPLOYMENT
    assert {column: row[column] for column in WIDE_CELLS} == WIDE_CELLS

    v2 = seed_manifest(DEPLOY_V2_FILE, namespace=namespace)
    applied = kubectl("apply", "-f", "-", input=v2)
    assert applied.stdout == f"{DEPLOYMENT_REF} configured\n"
    assert "last-applied-configuration annotation" in applied.stderr
    assert kubectl("apply", "-f", "-", input=v2).stdout == f"{DEPLOYMENT_REF} unchanged\n"

    live = get_object(kubectl, "deploy", DEPLOYMENT, namespace)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.19.2"
    assert live["spec"]["strategy"]["type"] == "RollingUpdate"


# What upstream v1.33 prints for the seed Deployment's spec: every default, nothing more.
SEED_SPEC_YAML = """\
spec:
  progressDeadlineSeconds: 600
  replicas: 3
  revisionHistoryLimit: 10
  selector:
    matchLabels:
      app: nginx
  strategy:
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 25%
    type: RollingUpdate
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: nginx
        version: v1
    spec:
      containers:
      - image: nginx:1.14.2
        imagePullPolicy: IfNotPresent
        name: nginx
        ports:
        - containerPort: 80
          protocol: TCP
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
"""


def test_yaml_shows_upstream_defaults(cluster: Cluster, deployed: str) -> None:
    output = cluster.kubectl("get", "deploy", DEPLOYMENT, "-n", deployed, "-o", "yaml").stdout
    spec_text = output[output.index("\nspec:\n") + 1 : output.index("\nstatus:") + 1]
    assert spec_text == SEED_SPEC_YAML

    live = yaml.safe_load(output)
    assert live["apiVersion"] == "apps/v1" and live["kind"] == "Deployment"
    meta = live["metadata"]
    assert meta["generation"] == 1
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert "managedFields" not in meta  # kubectl hides them unless asked


def test_edit_with_scripted_editor(cluster: Cluster, deployed: str) -> None:
    edit = partial(cluster.kubectl, "edit", "deploy", DEPLOYMENT, "-n", deployed)
    edited = edit(env={"EDITOR": "sed -i 's/replicas: 3/replicas: 4/'"})
    assert edited.stdout == f"{DEPLOYMENT_REF} edited\n"

    live = get_object(cluster.kubectl, "deploy", DEPLOYMENT, deployed, managed=True)
    assert live["spec"]["replicas"] == 4
    assert live["metadata"]["generation"] == 2
    assert managers(live)["kubectl-edit"]["operation"] == "Update"

    untouched = edit(env={"EDITOR": "true"})
    assert "Edit cancelled, no changes made." in untouched.stdout + untouched.stderr
    after = get_object(cluster.kubectl, "deploy", DEPLOYMENT, deployed)["metadata"]
    assert after["resourceVersion"] == live["metadata"]["resourceVersion"]


def test_edit_rejected_by_validation_keeps_the_object(
    cluster: Cluster, deployed: str, tmp_path: Path
) -> None:
    before = get_object(cluster.kubectl, "deploy", DEPLOYMENT, deployed)
    # kubectl reopens the file with the server's complaint on top; the second
    # pass of the scripted editor changes nothing, so kubectl gives up.
    rejected = cluster.kubectl(
        "edit",
        "deploy",
        DEPLOYMENT,
        "-n",
        deployed,
        env={"EDITOR": "sed -i 's/replicas: 3/replicas: -1/'", "TMPDIR": str(tmp_path)},
        check=False,
    )
    assert rejected.returncode == 1
    assert f'error: deployments.apps "{DEPLOYMENT}" is invalid' in rejected.stderr
    assert "Edit cancelled, no valid changes were saved." in rejected.stderr
    stored = re.search(r'A copy of your changes has been stored to "([^"]+)"', rejected.stderr)
    assert stored is not None
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in (
        Path(stored.group(1)).read_text()
    )
    after = get_object(cluster.kubectl, "deploy", DEPLOYMENT, deployed)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_scale_and_current_replicas_precondition(cluster: Cluster, deployed: str) -> None:
    kubectl = cluster.kubectl
    scale = partial(kubectl, "scale", "deploy", DEPLOYMENT, "-n", deployed)

    assert scale("--replicas=5").stdout == f"{DEPLOYMENT_REF} scaled\n"
    live = get_object(kubectl, "deploy", DEPLOYMENT, deployed, managed=True)
    assert live["spec"]["replicas"] == 5
    assert live["metadata"]["generation"] == 2
    scaler = managed_entry(live, kubectl_user_agent_name(cluster), "Update", "scale")
    assert scaler["fieldsV1"] == {"f:spec": {"f:replicas": {}}}

    refused = scale("--current-replicas=4", "--replicas=6", check=False)
    assert refused.returncode == 1
    assert "Expected replicas to be 4, was 5" in refused.stderr
    assert get_object(kubectl, "deploy", DEPLOYMENT, deployed)["spec"]["replicas"] == 5

    assert scale("--current-replicas=5", "--replicas=6").stdout == f"{DEPLOYMENT_REF} scaled\n"
    path = f"/apis/apps/v1/namespaces/{deployed}/deployments/{DEPLOYMENT}/scale"
    scale_obj = json.loads(kubectl("get", "--raw", path).stdout)
    assert scale_obj["apiVersion"] == "autoscaling/v1" and scale_obj["kind"] == "Scale"
    assert scale_obj["spec"] == {"replicas": 6}
    assert scale_obj["status"]["selector"] == "app=nginx"


def test_get_scale_subresource_table(cluster: Cluster, deployed: str) -> None:
    get = partial(cluster.kubectl, "get", "deploy", DEPLOYMENT, "-n", deployed)
    assert tables.columns(get("--subresource=status").stdout) == DEPLOY_COLUMNS
    scale = get("--subresource=scale").stdout
    assert tables.columns(scale) == ["NAME", "DESIRED", "AVAILABLE", "AGE"]
    assert tables.by_name(scale)[DEPLOYMENT]["DESIRED"] == "3"


def test_label_add_overwrite_remove(cluster: Cluster, deployed: str) -> None:
    kubectl = cluster.kubectl
    label = partial(kubectl, "label", "deploy", DEPLOYMENT, "-n", deployed)
    generation, _ = generation_and_version(kubectl, deployed)

    assert label("tier=web").stdout == f"{DEPLOYMENT_REF} labeled\n"
    refused = label("tier=db", check=False)
    assert refused.returncode == 1
    assert "error: 'tier' already has a value (web), and --overwrite is false" in refused.stderr
    labels = get_object(kubectl, "deploy", DEPLOYMENT, deployed)["metadata"]["labels"]
    assert labels["tier"] == "web"

    assert label("tier=db", "--overwrite").stdout == f"{DEPLOYMENT_REF} labeled\n"
    labeler = managers(get_object(kubectl, "deploy", DEPLOYMENT, deployed, managed=True))
    assert labeler["kubectl-label"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:tier": {}}}}
    selected = kubectl("get", "deploy", "-n", deployed, "-l", "tier=db", "-o", "name")
    assert selected.stdout == f"{DEPLOYMENT_REF}\n"

    assert label("tier-").stdout == f"{DEPLOYMENT_REF} unlabeled\n"
    live = get_object(kubectl, "deploy", DEPLOYMENT, deployed, managed=True)
    assert live["metadata"]["labels"] == {"app": "nginx"}
    # Labels are metadata only: the generation stays where it was.
    assert live["metadata"]["generation"] == generation
    # The manager that owned only the removed label owns nothing now, so it is gone.
    assert "kubectl-label" not in managers(live)


def test_annotate_add_overwrite_remove(cluster: Cluster, deployed: str) -> None:
    kubectl = cluster.kubectl
    annotate = partial(kubectl, "annotate", "deploy", DEPLOYMENT, "-n", deployed)
    generation, _ = generation_and_version(kubectl, deployed)

    assert annotate("owner=team-a").stdout == f"{DEPLOYMENT_REF} annotated\n"
    refused = annotate("owner=team-b", check=False)
    assert refused.returncode == 1
    assert "'owner' already has a value (team-a)" in refused.stderr

    assert annotate("owner=team-b", "--overwrite").stdout == f"{DEPLOYMENT_REF} annotated\n"
    live = get_object(kubectl, "deploy", DEPLOYMENT, deployed, managed=True)
    assert live["metadata"]["annotations"]["owner"] == "team-b"
    assert "kubectl-annotate" in managers(live)
    # Deployments are the exception to "spec changes only": upstream also bumps
    # the generation on annotation changes, since they are copied to ReplicaSets.
    assert live["metadata"]["generation"] == generation + 2

    assert annotate("owner-").stdout == f"{DEPLOYMENT_REF} annotated\n"
    live = get_object(kubectl, "deploy", DEPLOYMENT, deployed)
    assert "owner" not in live["metadata"].get("annotations", {})


def test_removing_the_last_label_and_annotation_leaves_no_empty_map(
    cluster: Cluster, deployed: str
) -> None:
    kubectl = cluster.kubectl
    kubectl("label", "deploy", DEPLOYMENT, "-n", deployed, "app-")
    kubectl("annotate", "deploy", DEPLOYMENT, "-n", deployed, "note=1")
    kubectl("annotate", "deploy", DEPLOYMENT, "-n", deployed, "note-")
    # Go drops an empty map on encoding when its field is omitempty.
    meta = get_object(kubectl, "deploy", DEPLOYMENT, deployed)["metadata"]
    assert "labels" not in meta
    assert "annotations" not in meta


def test_patching_in_empty_maps_is_a_no_op(cluster: Cluster, deployed: str) -> None:
    kubectl = cluster.kubectl
    patch = partial(kubectl, "patch", "deploy", DEPLOYMENT, "-n", deployed)
    before = generation_and_version(kubectl, deployed)

    annotations = '{"metadata":{"annotations":{}}}'
    dry = json.loads(patch("-p", annotations, "--dry-run=server", "-o", "json").stdout)
    assert "annotations" not in dry["metadata"]
    no_op = f"{DEPLOYMENT_REF} patched (no change)\n"
    assert patch("-p", annotations).stdout == no_op
    selector = '{"spec":{"template":{"spec":{"nodeSelector":{}}}}}'
    assert patch("--type=merge", "-p", selector).stdout == no_op
    assert generation_and_version(kubectl, deployed) == before


def test_generation_follows_spec_and_no_op_keeps_resource_version(
    cluster: Cluster, deployed: str
) -> None:
    kubectl = cluster.kubectl
    assert generation_and_version(kubectl, deployed)[0] == 1

    kubectl("label", "deploy", DEPLOYMENT, "-n", deployed, "tier=web")
    generation, version = generation_and_version(kubectl, deployed)
    assert generation == 1

    kubectl("scale", "deploy", DEPLOYMENT, "-n", deployed, "--replicas=2")
    generation, scaled_version = generation_and_version(kubectl, deployed)
    assert generation == 2
    assert int(scaled_version) > int(version)

    no_op = kubectl("patch", "deploy", DEPLOYMENT, "-n", deployed, "-p", '{"spec":{"replicas":2}}')
    assert no_op.stdout == f"{DEPLOYMENT_REF} patched (no change)\n"
    assert generation_and_version(kubectl, deployed) == (2, scaled_version)

    same_label = kubectl("label", "deploy", DEPLOYMENT, "-n", deployed, "tier=web", "--overwrite")
    assert same_label.returncode == 0
    assert generation_and_version(kubectl, deployed) == (2, scaled_version)

    current = kubectl("get", "deploy", DEPLOYMENT, "-n", deployed, "-o", "yaml").stdout
    replaced = kubectl("replace", "-f", "-", input=current)
    assert replaced.stdout == f"{DEPLOYMENT_REF} replaced\n"
    assert generation_and_version(kubectl, deployed) == (2, scaled_version)


def test_replace_with_a_stale_resource_version_conflicts(cluster: Cluster, deployed: str) -> None:
    kubectl = cluster.kubectl
    stale = get_object(kubectl, "deploy", DEPLOYMENT, deployed)
    kubectl("scale", "deploy", DEPLOYMENT, "-n", deployed, "--replicas=4")
    current = get_object(kubectl, "deploy", DEPLOYMENT, deployed)

    stale["spec"]["replicas"] = 6
    refused = kubectl("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert refused.returncode == 1
    assert (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be '
        f'fulfilled on deployments.apps "{DEPLOYMENT}": the object has been modified; please '
        "apply your changes to the latest version and try again"
    ) in refused.stderr
    assert get_object(kubectl, "deploy", DEPLOYMENT, deployed) == current
