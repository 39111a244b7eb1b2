"""Specification of the Table printers: columns and cells as upstream v1.33 prints them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubi.api.printers import (
    column_definitions,
    has_printer,
    human_duration,
    row_cells,
    row_conditions,
)

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, created: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "namespace": "demo"}
    out["creationTimestamp"] = created or ago(minutes=5)
    out.update(extra)
    return out


def names(group: str, plural: str) -> list[str]:
    return [column["name"] for column in column_definitions(group, plural)]


def wide_names(group: str, plural: str) -> list[str]:
    return [c["name"] for c in column_definitions(group, plural) if c["priority"] == 1]


# --- human_duration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1.5, "0s"),
        (-2, "<invalid>"),
        (59.9, "59s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60 + 7, "3h5m"),
        (8 * 3600 + 30 * 60, "8h"),
        (47 * 3600 + 59 * 60, "47h"),
        (48 * 3600, "2d"),
        (2 * 86400 + 5 * 3600, "2d5h"),
        (8 * 86400 + 5 * 3600, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (8 * 365 * 86400 + 40 * 86400, "8y"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


# --- column definitions -----------------------------------------------------------


def test_column_definition_shape() -> None:
    first = column_definitions("", "pods")[0]
    assert first == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": first["description"],
        "priority": 0,
    }
    assert first["description"]


@pytest.mark.parametrize(
    ("group", "plural", "columns", "wide"),
    [
        ("", "pods", ["Name", "Ready", "Status", "Restarts", "Age"],
         ["IP", "Node", "Nominated Node", "Readiness Gates"]),
        ("", "services", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"],
         ["Selector"]),
        ("", "nodes", ["Name", "Status", "Roles", "Age", "Version"],
         ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"]),
        ("", "events", ["Last Seen", "Type", "Reason", "Object", "Message"],
         ["Subobject", "Source", "First Seen", "Count", "Name"]),
        ("", "persistentvolumes",
         ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim",
          "StorageClass", "VolumeAttributesClass", "Reason", "Age"], ["VolumeMode"]),
        ("", "persistentvolumeclaims",
         ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
          "VolumeAttributesClass", "Age"], ["VolumeMode"]),
        ("", "resourcequotas", ["Name", "Request", "Limit", "Age"], []),
        ("", "serviceaccounts", ["Name", "Secrets", "Age"], []),
        ("apps", "deployments", ["Name", "Ready", "Up-to-date", "Available", "Age"],
         ["Containers", "Images", "Selector"]),
        ("apps", "replicasets", ["Name", "Desired", "Current", "Ready", "Age"],
         ["Containers", "Images", "Selector"]),
        ("apps", "statefulsets", ["Name", "Ready", "Age"], ["Containers", "Images"]),
        ("apps", "controllerrevisions", ["Name", "Controller", "Revision", "Age"], []),
        ("storage.k8s.io", "csidrivers",
         ["Name", "AttachRequired", "PodInfoOnMount", "StorageCapacity", "TokenRequests",
          "RequiresRepublish", "Modes", "Age"], []),
        ("coordination.k8s.io", "leases", ["Name", "Holder", "Age"], []),
        ("discovery.k8s.io", "endpointslices",
         ["Name", "AddressType", "Ports", "Endpoints", "Age"], []),
    ],
)  # fmt: skip
def test_columns(group: str, plural: str, columns: list[str], wide: list[str]) -> None:
    all_names = names(group, plural)
    assert [n for n in all_names if n not in wide] == columns
    assert wide_names(group, plural) == wide


def test_events_list_message_before_the_wide_columns() -> None:
    assert names("", "events") == [
        "Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message",
        "First Seen", "Count", "Name",
    ]  # fmt: skip
    assert column_definitions("", "events")[-1]["format"] == "name"
    assert names("events.k8s.io", "events") == names("", "events")


def test_integer_column_types() -> None:
    types = {c["name"]: c["type"] for c in column_definitions("apps", "replicasets")}
    assert types["Desired"] == types["Current"] == types["Ready"] == "integer"
    assert {c["name"]: c["type"] for c in column_definitions("", "pods")}["Restarts"] == "string"


def test_fallback_columns_for_resources_without_printer() -> None:
    assert not has_printer("", "limitranges")
    assert has_printer("coordination.k8s.io", "leases")
    columns = column_definitions("", "limitranges")
    assert [(c["name"], c["type"], c["format"]) for c in columns] == [
        ("Name", "string", "name"),
        ("Created At", "date", ""),
    ]
    obj = {"metadata": meta("limits", created="2024-05-30T08:09:10Z")}
    assert row_cells("", "limitranges", obj, NOW) == ["limits", "2024-05-30T08:09:10Z"]
    assert row_cells("", "limitranges", {"metadata": {"name": "x"}}, NOW) == [
        "x",
        "0001-01-01T00:00:00Z",
    ]
    assert row_conditions("", "limitranges", obj) is None


# --- pods ---------------------------------------------------------------------------


def pod(
    containers: list[dict[str, Any]],
    statuses: list[dict[str, Any]],
    phase: str = "Running",
    **status: Any,
) -> dict[str, Any]:
    return {
        "metadata": meta("web-0"),
        "spec": {"containers": containers, "nodeName": "node-1"},
        "status": {"phase": phase, "containerStatuses": statuses, **status},
    }


NGINX = {"name": "nginx", "image": "nginx:1.25"}
RUNNING = {"name": "nginx", "ready": True, "restartCount": 0, "state": {"running": {}}}


def test_running_pod() -> None:
    obj = pod(
        [NGINX],
        [RUNNING],
        podIP="10.1.0.5",
        podIPs=[{"ip": "10.1.0.5"}, {"ip": "fd00::5"}],
        conditions=[{"type": "Ready", "status": "True"}],
    )
    cells = row_cells("", "pods", obj, NOW)
    assert cells == ["web-0", "1/1", "Running", "0", "5m", "10.1.0.5", "node-1", "<none>", "<none>"]
    assert row_conditions("", "pods", obj) is None


def test_ip_comes_from_pod_ips_only() -> None:
    obj = pod([NGINX], [RUNNING], podIP="10.1.0.5")
    assert row_cells("", "pods", obj, NOW)[5] == "<none>"


def test_crash_loop_back_off() -> None:
    status = {
        "name": "nginx",
        "ready": False,
        "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
        "lastState": {
            "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(minutes=2)}
        },
    }
    cells = row_cells("", "pods", pod([NGINX], [status]), NOW)
    assert cells[1:4] == ["0/1", "CrashLoopBackOff", "5 (2m ago)"]


def test_restarts_without_a_finish_time_have_no_suffix() -> None:
    status = {**RUNNING, "restartCount": 2}
    assert row_cells("", "pods", pod([NGINX], [status]), NOW)[3] == "2"


def test_completed_pod() -> None:
    status = {
        "name": "nginx",
        "ready": False,
        "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    obj = pod([NGINX], [status], phase="Succeeded")
    assert row_cells("", "pods", obj, NOW)[1:3] == ["0/1", "Completed"]
    assert row_conditions("", "pods", obj) == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]


def test_failed_pod_conditions() -> None:
    obj = pod([NGINX], [], phase="Failed")
    assert row_conditions("", "pods", obj)[0]["reason"] == "Failed"  # type: ignore[index]


@pytest.mark.parametrize(
    ("terminated", "expected"),
    [
        ({"exitCode": 2}, "ExitCode:2"),
        ({"exitCode": 137, "signal": 9}, "Signal:9"),
        ({"exitCode": 137, "reason": "OOMKilled"}, "OOMKilled"),
    ],
)
def test_terminated_container_reasons(terminated: dict[str, Any], expected: str) -> None:
    status = {"name": "nginx", "restartCount": 0, "state": {"terminated": terminated}}
    assert row_cells("", "pods", pod([NGINX], [status], phase="Failed"), NOW)[2] == expected


def test_first_container_in_spec_order_decides_the_status() -> None:
    sidecar = {"name": "log", "image": "busybox"}
    statuses = [
        {"name": "nginx", "state": {"waiting": {"reason": "ImagePullBackOff"}}},
        {"name": "log", "state": {"waiting": {"reason": "ErrImagePull"}}},
    ]
    obj = pod([NGINX, sidecar], statuses, phase="Pending")
    assert row_cells("", "pods", obj, NOW)[1:3] == ["0/2", "ImagePullBackOff"]


def test_completed_container_next_to_a_running_one() -> None:
    helper = {"name": "once", "image": "busybox"}
    statuses = [
        RUNNING,
        {"name": "once", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
    ]
    not_ready = pod([NGINX, helper], statuses)
    assert row_cells("", "pods", not_ready, NOW)[1:3] == ["1/2", "NotReady"]
    ready = pod([NGINX, helper], statuses, conditions=[{"type": "Ready", "status": "True"}])
    assert row_cells("", "pods", ready, NOW)[2] == "Running"


def test_pending_pod_creating_containers() -> None:
    status = {
        "name": "nginx",
        "ready": False,
        "state": {"waiting": {"reason": "ContainerCreating"}},
    }
    cells = row_cells("", "pods", pod([NGINX], [status], phase="Pending"), NOW)
    assert cells[1:4] == ["0/1", "ContainerCreating", "0"]


def test_pending_pod_without_statuses_shows_its_phase() -> None:
    obj = {"metadata": meta("p"), "spec": {"containers": [NGINX]}, "status": {"phase": "Pending"}}
    assert row_cells("", "pods", obj, NOW)[1:3] == ["0/1", "Pending"]


def test_scheduling_gated() -> None:
    obj = pod(
        [NGINX],
        [],
        phase="Pending",
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    )
    assert row_cells("", "pods", obj, NOW)[2] == "SchedulingGated"


def test_status_reason_overrides_phase() -> None:
    obj = pod([NGINX], [], phase="Failed", reason="Evicted")
    assert row_cells("", "pods", obj, NOW)[2] == "Evicted"


def test_terminating_pod() -> None:
    obj = pod([NGINX], [RUNNING])
    obj["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert row_cells("", "pods", obj, NOW)[2] == "Terminating"


def test_deleted_pod_on_lost_node_is_unknown() -> None:
    obj = pod([NGINX], [RUNNING], reason="NodeLost")
    obj["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert row_cells("", "pods", obj, NOW)[2] == "Unknown"


def test_deleted_finished_pod_keeps_its_status() -> None:
    status = {"name": "nginx", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    obj = pod([NGINX], [status], phase="Succeeded")
    obj["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert row_cells("", "pods", obj, NOW)[2] == "Completed"


def init_pod(init_statuses: list[dict[str, Any]], **status: Any) -> dict[str, Any]:
    obj = pod(
        [NGINX],
        [{"name": "nginx", "state": {"waiting": {"reason": "PodInitializing"}}}],
        phase="Pending",
        initContainerStatuses=init_statuses,
        **status,
    )
    obj["spec"]["initContainers"] = [
        {"name": "migrate", "image": "migrate:1"},
        {"name": "warm", "image": "warm:1"},
    ]
    return obj


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (
            [{"name": "migrate", "state": {"waiting": {"reason": "PodInitializing"}}}],
            "Init:0/2",
        ),
        ([{"name": "migrate", "state": {"running": {}}}], "Init:0/2"),
        (
            [
                {"name": "migrate", "state": {"terminated": {"exitCode": 0}}},
                {"name": "warm", "state": {"running": {}}},
            ],
            "Init:1/2",
        ),
        (
            [{"name": "migrate", "state": {"waiting": {"reason": "ErrImagePull"}}}],
            "Init:ErrImagePull",
        ),
        (
            [{"name": "migrate", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
            "Init:Error",
        ),
        ([{"name": "migrate", "state": {"terminated": {"exitCode": 3}}}], "Init:ExitCode:3"),
        (
            [{"name": "migrate", "state": {"terminated": {"exitCode": 1, "signal": 15}}}],
            "Init:Signal:15",
        ),
    ],
)
def test_init_container_status(statuses: list[dict[str, Any]], expected: str) -> None:
    assert row_cells("", "pods", init_pod(statuses), NOW)[1:3] == ["0/1", expected]


def test_init_crash_loop_counts_init_restarts() -> None:
    statuses = [
        {
            "name": "migrate",
            "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(seconds=30)}},
        }
    ]
    cells = row_cells("", "pods", init_pod(statuses), NOW)
    assert cells[2:4] == ["Init:CrashLoopBackOff", "4 (30s ago)"]


def test_finished_init_containers_leave_app_status() -> None:
    statuses = [
        {"name": "migrate", "restartCount": 1, "state": {"terminated": {"exitCode": 0}}},
        {"name": "warm", "state": {"terminated": {"exitCode": 0}}},
    ]
    obj = init_pod(statuses)
    obj["status"]["containerStatuses"] = [RUNNING]
    # Restarts of plain init containers no longer count once the pod is initialized.
    assert row_cells("", "pods", obj, NOW)[1:4] == ["1/1", "Pending", "0"]


def test_sidecar_containers_count_towards_ready_and_restarts() -> None:
    obj = pod(
        [NGINX],
        [{**RUNNING, "restartCount": 1}],
        initContainerStatuses=[
            {
                "name": "proxy",
                "ready": True,
                "started": True,
                "restartCount": 2,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=3)}},
            }
        ],
        conditions=[{"type": "Initialized", "status": "True"}],
    )
    obj["spec"]["initContainers"] = [
        {"name": "proxy", "image": "envoy:1", "restartPolicy": "Always"},
    ]
    assert row_cells("", "pods", obj, NOW)[1:4] == ["2/2", "Running", "3 (3m ago)"]


def test_sidecar_not_started_blocks_initialization() -> None:
    obj = init_pod([{"name": "proxy", "started": False, "state": {"running": {}}}])
    obj["spec"]["initContainers"] = [{"name": "proxy", "restartPolicy": "Always"}]
    assert row_cells("", "pods", obj, NOW)[1:3] == ["0/2", "Init:0/1"]


def test_readiness_gates_and_nominated_node() -> None:
    obj = pod(
        [NGINX],
        [RUNNING],
        nominatedNodeName="node-2",
        conditions=[
            {"type": "example.com/lb", "status": "True"},
            {"type": "example.com/dns", "status": "False"},
        ],
    )
    obj["spec"]["readinessGates"] = [
        {"conditionType": "example.com/lb"},
        {"conditionType": "example.com/dns"},
    ]
    assert row_cells("", "pods", obj, NOW)[7:] == ["node-2", "1/2"]


def test_missing_creation_timestamp_is_unknown_age() -> None:
    obj = {"metadata": {"name": "p"}, "spec": {"containers": [NGINX]}, "status": {}}
    assert row_cells("", "pods", obj, NOW)[4] == "<unknown>"


# --- workloads --------------------------------------------------------------------

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [NGINX, {"name": "log", "image": "busybox:1.36"}]},
}


def test_deployment_mid_rollout() -> None:
    obj = {
        "metadata": meta("web", created=ago(hours=3, minutes=12)),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"replicas": 4, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2},
    }
    assert row_cells("apps", "deployments", obj, NOW) == [
        "web",
        "2/3",
        1,
        2,
        "3h12m",
        "nginx,log",
        "nginx:1.25,busybox:1.36",
        "app=web",
    ]


def test_deployment_without_status_or_selector() -> None:
    obj = {"metadata": meta("web"), "spec": {"replicas": 2, "template": TEMPLATE}}
    assert row_cells("apps", "deployments", obj, NOW)[1:4] == ["0/2", 0, 0]
    assert row_cells("apps", "deployments", obj, NOW)[-1] == ""


def test_replicaset_selector_with_expressions() -> None:
    selector = {
        "matchLabels": {"pod-template-hash": "5d65f98bd9", "app": "nginx"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["qa", "prod"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "tier", "operator": "Exists"},
        ],
    }
    obj = {
        "metadata": meta("nginx-deployment-demo-5d65f98bd9", created=ago(seconds=5)),
        "spec": {"replicas": 3, "selector": selector, "template": TEMPLATE},
        "status": {"replicas": 3, "readyReplicas": 0},
    }
    assert row_cells("apps", "replicasets", obj, NOW) == [
        "nginx-deployment-demo-5d65f98bd9",
        3,
        3,
        0,
        "5s",
        "nginx,log",
        "nginx:1.25,busybox:1.36",
        "app=nginx,!canary,env in (prod,qa),pod-template-hash=5d65f98bd9,tier",
    ]


def test_replicaset_empty_and_malformed_selectors() -> None:
    obj: dict[str, Any] = {"metadata": meta("rs"), "spec": {"template": TEMPLATE}}
    assert row_cells("apps", "replicasets", obj, NOW)[-1] == "<none>"
    obj["spec"]["selector"] = {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}
    assert row_cells("apps", "replicasets", obj, NOW)[-1] == "<error>"
    assert row_cells("apps", "deployments", obj, NOW)[-1] == "<invalid>"


def test_replication_controller() -> None:
    obj = {
        "metadata": meta("nginx-rc"),
        "spec": {"replicas": 2, "selector": {"app": "nginx"}, "template": TEMPLATE},
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert row_cells("", "replicationcontrollers", obj, NOW) == [
        "nginx-rc",
        2,
        2,
        1,
        "5m",
        "nginx,log",
        "nginx:1.25,busybox:1.36",
        "app=nginx",
    ]


def test_statefulset() -> None:
    obj = {
        "metadata": meta("web-demo", created=ago(seconds=9)),
        "spec": {"replicas": 2, "template": TEMPLATE},
        "status": {"replicas": 1},
    }
    assert row_cells("apps", "statefulsets", obj, NOW) == [
        "web-demo",
        "0/2",
        "9s",
        "nginx,log",
        "nginx:1.25,busybox:1.36",
    ]


def test_controller_revision() -> None:
    owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True}
    obj = {"metadata": meta("web-7c9d", ownerReferences=[owner]), "revision": 2}
    assert row_cells("apps", "controllerrevisions", obj, NOW) == [
        "web-7c9d",
        "statefulset.apps/web",
        2,
        "5m",
    ]
    core_owner = {"apiVersion": "v1", "kind": "Pod", "name": "p", "controller": True}
    obj["metadata"]["ownerReferences"] = [{**owner, "controller": False}, core_owner]
    assert row_cells("apps", "controllerrevisions", obj, NOW)[1] == "pod/p"
    obj["metadata"]["ownerReferences"] = []
    assert row_cells("apps", "controllerrevisions", obj, NOW)[1] == "<none>"


# --- services and endpoints ---------------------------------------------------------


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta("nginx-demo"), "spec": spec, "status": status or {}}


def test_headless_service() -> None:
    obj = service(
        {
            "type": "ClusterIP",
            "clusterIP": "None",
            "clusterIPs": ["None"],
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "selector": {"app": "nginx"},
        }
    )
    assert row_cells("", "services", obj, NOW) == [
        "nginx-demo",
        "ClusterIP",
        "None",
        "<none>",
        "80/TCP",
        "5m",
        "app=nginx",
    ]


def test_node_port_service() -> None:
    obj = service(
        {
            "type": "NodePort",
            "clusterIPs": ["10.96.12.7"],
            "ports": [
                {"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"},
                {"name": "dns", "port": 53, "nodePort": 30053, "protocol": "UDP"},
            ],
        }
    )
    cells = row_cells("", "services", obj, NOW)
    assert cells[1:5] == ["NodePort", "10.96.12.7", "<none>", "80:30080/TCP,53:30053/UDP"]
    assert cells[6] == "<none>"


def test_load_balancer_service() -> None:
    spec = {"type": "LoadBalancer", "clusterIPs": ["10.96.0.9"], "ports": [{"port": 443}]}
    assert row_cells("", "services", service(spec), NOW)[3:5] == ["<pending>", "443/TCP"]
    status = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}}
    spec_with_external = {**spec, "externalIPs": ["198.51.100.1"]}
    assert (
        row_cells("", "services", service(spec_with_external, status), NOW)[3]
        == "203.0.113.9,lb.example.com,198.51.100.1"
    )


def test_cluster_ip_service_with_external_ips_and_no_ports() -> None:
    spec = {"type": "ClusterIP", "clusterIPs": ["10.96.0.3"], "externalIPs": ["192.0.2.1"]}
    assert row_cells("", "services", service(spec), NOW)[3:5] == ["192.0.2.1", "<none>"]


def test_external_name_service() -> None:
    spec = {"type": "ExternalName", "externalName": "db.example.com"}
    assert row_cells("", "services", service(spec), NOW)[1:4] == [
        "ExternalName",
        "<none>",
        "db.example.com",
    ]


def test_endpoints() -> None:
    obj = {
        "metadata": meta("nginx"),
        "subsets": [
            {
                "addresses": [{"ip": "10.1.0.4"}, {"ip": "10.1.0.5"}],
                "ports": [{"name": "http", "port": 80}, {"name": "metrics", "port": 9100}],
            }
        ],
    }
    assert row_cells("", "endpoints", obj, NOW) == [
        "nginx",
        "10.1.0.4:80,10.1.0.5:80,10.1.0.4:9100 + 1 more...",
        "5m",
    ]


def test_endpoints_without_subsets_ports_or_ipv4() -> None:
    assert row_cells("", "endpoints", {"metadata": meta("e")}, NOW)[1] == "<none>"
    headless = {"metadata": meta("e"), "subsets": [{"addresses": [{"ip": "10.1.0.4"}]}]}
    assert row_cells("", "endpoints", headless, NOW)[1] == "10.1.0.4"
    v6 = {
        "metadata": meta("e"),
        "subsets": [{"addresses": [{"ip": "fd00::4"}], "ports": [{"port": 80}]}],
    }
    assert row_cells("", "endpoints", v6, NOW)[1] == "[fd00::4]:80"


def test_endpoint_slice() -> None:
    obj = {
        "metadata": meta("nginx-abcde"),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}],
        "endpoints": [{"addresses": [f"10.1.0.{i}"]} for i in range(1, 6)],
    }
    assert row_cells("discovery.k8s.io", "endpointslices", obj, NOW) == [
        "nginx-abcde",
        "IPv4",
        "80,named,*",
        "10.1.0.1,10.1.0.2,10.1.0.3 + 2 more...",
        "5m",
    ]
    empty = {"metadata": meta("empty"), "addressType": "IPv4"}
    assert row_cells("discovery.k8s.io", "endpointslices", empty, NOW)[2:4] == [
        "<unset>",
        "<unset>",
    ]


# --- storage ------------------------------------------------------------------------


def test_bound_persistent_volume() -> None:
    obj = {
        "metadata": meta("task-pv-volume", created=ago(minutes=2, seconds=12)),
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "manual",
            "volumeMode": "Filesystem",
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "namespace": "default",
                "name": "task-pv-claim",
            },
        },
        "status": {"phase": "Bound"},
    }
    assert row_cells("", "persistentvolumes", obj, NOW) == [
        "task-pv-volume",
        "10Gi",
        "RWO",
        "Retain",
        "Bound",
        "default/task-pv-claim",
        "manual",
        "<unset>",
        "",
        "2m12s",
        "Filesystem",
    ]


def test_available_and_terminating_persistent_volume() -> None:
    obj: dict[str, Any] = {
        "metadata": meta("pv", annotations={"volume.beta.kubernetes.io/storage-class": "old"}),
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOncePod", "ReadWriteMany", "ReadOnlyMany", "ReadWriteMany"],
            "storageClassName": "ignored",
            "volumeAttributesClassName": "gold",
        },
        "status": {"phase": "Available"},
    }
    cells = row_cells("", "persistentvolumes", obj, NOW)
    assert cells[2] == "ROX,RWX,RWOP"
    assert cells[4:8] == ["Available", "", "old", "gold"]
    assert cells[-1] == "<unset>"
    obj["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert row_cells("", "persistentvolumes", obj, NOW)[4] == "Terminating"


def test_bound_and_pending_claims() -> None:
    bound = {
        "metadata": meta("task-pv-claim", created=ago(seconds=9)),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "3Gi"}},
            "storageClassName": "manual",
            "volumeName": "task-pv-volume",
            "volumeMode": "Filesystem",
        },
        "status": {
            "phase": "Bound",
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "10Gi"},
        },
    }
    assert row_cells("", "persistentvolumeclaims", bound, NOW) == [
        "task-pv-claim",
        "Bound",
        "task-pv-volume",
        "10Gi",
        "RWO",
        "manual",
        "<unset>",
        "9s",
        "Filesystem",
    ]
    pending = {
        "metadata": meta("data"),
        "spec": {"accessModes": ["ReadWriteOnce"]},
        "status": {"phase": "Pending"},
    }
    assert row_cells("", "persistentvolumeclaims", pending, NOW) == [
        "data",
        "Pending",
        "",
        "",
        "",
        "",
        "<unset>",
        "5m",
        "<unset>",
    ]


def test_default_storage_class() -> None:
    obj = {
        "metadata": meta(
            "standard", annotations={"storageclass.kubernetes.io/is-default-class": "true"}
        ),
        "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    assert row_cells("storage.k8s.io", "storageclasses", obj, NOW) == [
        "standard (default)",
        "rancher.io/local-path",
        "Delete",
        "WaitForFirstConsumer",
        False,
        "5m",
    ]
    plain = {
        "metadata": meta("fast"),
        "provisioner": "p",
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": True,
    }
    assert row_cells("storage.k8s.io", "storageclasses", plain, NOW)[:5] == [
        "fast",
        "p",
        "Retain",
        "Immediate",
        True,
    ]


def test_csi_driver_and_node() -> None:
    driver = {
        "metadata": meta("hostpath.csi.k8s.io"),
        "spec": {
            "attachRequired": False,
            "volumeLifecycleModes": ["Persistent", "Ephemeral"],
            "tokenRequests": [{"audience": "vault"}, {"audience": "aws"}],
        },
    }
    assert row_cells("storage.k8s.io", "csidrivers", driver, NOW) == [
        "hostpath.csi.k8s.io",
        False,
        False,
        False,
        "vault,aws",
        False,
        "Persistent,Ephemeral",
        "5m",
    ]
    bare = {"metadata": meta("d"), "spec": {}}
    assert row_cells("storage.k8s.io", "csidrivers", bare, NOW)[1:7] == [
        True,
        False,
        False,
        "<unset>",
        False,
        "<none>",
    ]
    node = {"metadata": meta("node-1"), "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}}
    assert row_cells("storage.k8s.io", "csinodes", node, NOW) == ["node-1", 2, "5m"]


# --- nodes ----------------------------------------------------------------------------


def node(conditions: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": meta(
            "kraken",
            created=ago(days=3, hours=4),
            labels={
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/": "",
                "kubernetes.io/role": "worker",
            },
        ),
        "spec": spec,
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "Hostname", "address": "kraken"},
                {"type": "InternalIP", "address": "192.168.1.10"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.33.1-kubi",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64",
                "containerRuntimeVersion": "kubi://0.1.0",
            },
        },
    }


def test_ready_node() -> None:
    obj = node([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}])
    assert row_cells("", "nodes", obj, NOW) == [
        "kraken",
        "Ready",
        "control-plane,worker",
        "3d4h",
        "v1.33.1-kubi",
        "192.168.1.10",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-18-amd64",
        "kubi://0.1.0",
    ]


def test_node_status_variants() -> None:
    cordoned = node([{"type": "Ready", "status": "Unknown"}], unschedulable=True)
    assert row_cells("", "nodes", cordoned, NOW)[1] == "NotReady,SchedulingDisabled"
    fresh = node([])
    assert row_cells("", "nodes", fresh, NOW)[1] == "Unknown"
    bare = {"metadata": {"name": "n"}, "status": {}}
    assert row_cells("", "nodes", bare, NOW)[1:] == [
        "Unknown",
        "<none>",
        "<unknown>",
        "",
        "<none>",
        "<none>",
        "<unknown>",
        "<unknown>",
        "<unknown>",
    ]


# --- events ---------------------------------------------------------------------------


def test_core_event_with_count() -> None:
    obj = {
        "metadata": meta("web-demo-0.17c3f0a1b2", created=ago(minutes=20)),
        "involvedObject": {
            "kind": "Pod",
            "namespace": "demo",
            "name": "web-demo-0",
            "fieldPath": "spec.containers{nginx}",
        },
        "reason": "BackOff",
        "message": "Back-off restarting failed container nginx\n",
        "source": {"component": "kubelet", "host": "kraken"},
        "firstTimestamp": ago(minutes=20),
        "lastTimestamp": ago(minutes=1),
        "count": 3,
        "type": "Warning",
    }
    assert row_cells("", "events", obj, NOW) == [
        "60s",
        "Warning",
        "BackOff",
        "pod/web-demo-0",
        "spec.containers{nginx}",
        "kubelet, kraken",
        "Back-off restarting failed container nginx",
        "20m",
        3,
        "web-demo-0.17c3f0a1b2",
    ]


def test_new_style_event_uses_event_time_and_reporting_controller() -> None:
    obj = {
        "metadata": meta("web.17c"),
        "involvedObject": {"kind": "StatefulSet", "name": "web-demo"},
        "reason": "SuccessfulCreate",
        "message": "create Pod web-demo-0 in StatefulSet web-demo successful",
        "source": {},
        "eventTime": (NOW - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingComponent": "statefulset-controller",
        "reportingInstance": "",
        "type": "Normal",
    }
    cells = row_cells("", "events", obj, NOW)
    assert cells[0] == cells[7] == "4m"
    assert cells[3] == "statefulset/web-demo"
    assert cells[5] == "statefulset-controller"
    assert cells[8] == 1


def test_event_series_and_missing_times() -> None:
    obj = {
        "metadata": meta("e"),
        "involvedObject": {"kind": "Node"},
        "series": {"count": 7, "lastObservedTime": ago(seconds=30)},
        "firstTimestamp": ago(hours=2),
    }
    cells = row_cells("", "events", obj, NOW)
    assert (cells[0], cells[3], cells[7], cells[8]) == ("30s", "node", "120m", 7)
    bare = {"metadata": meta("e")}
    assert row_cells("", "events", bare, NOW)[0] == "<unknown>"


def test_events_k8s_io_view_prints_like_core() -> None:
    obj = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": meta("web-demo-0.17c3"),
        "regarding": {"kind": "Pod", "name": "web-demo-0", "fieldPath": "spec.containers{nginx}"},
        "note": 'Pulling image "nginx:1.19.2-alpine"',
        "reason": "Pulling",
        "type": "Normal",
        "reportingController": "kubelet",
        "reportingInstance": "kraken",
        "eventTime": None,
        "deprecatedSource": {"component": "kubelet", "host": "kraken"},
        "deprecatedFirstTimestamp": ago(minutes=20),
        "deprecatedLastTimestamp": ago(minutes=20),
        "deprecatedCount": 1,
    }
    assert row_cells("events.k8s.io", "events", obj, NOW) == [
        "20m",
        "Normal",
        "Pulling",
        "pod/web-demo-0",
        "spec.containers{nginx}",
        "kubelet, kraken",
        'Pulling image "nginx:1.19.2-alpine"',
        "20m",
        1,
        "web-demo-0.17c3",
    ]


# --- small core kinds -------------------------------------------------------------------


def test_namespace_configmap_secret_serviceaccount() -> None:
    ns = {
        "metadata": {"name": "demo", "creationTimestamp": ago(days=12)},
        "status": {"phase": "Active"},
    }
    assert row_cells("", "namespaces", ns, NOW) == ["demo", "Active", "12d"]
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert row_cells("", "configmaps", cm, NOW) == ["cfg", 3, "5m"]
    secret = {
        "metadata": meta("regcred", created=ago(seconds=28)),
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": "e30="},
    }
    assert row_cells("", "secrets", secret, NOW) == [
        "regcred",
        "kubernetes.io/dockerconfigjson",
        1,
        "28s",
    ]
    sa = {"metadata": meta("default")}
    assert row_cells("", "serviceaccounts", sa, NOW) == ["default", 0, "5m"]


def test_resource_quota() -> None:
    obj = {
        "metadata": meta("compute"),
        "status": {
            "hard": {"requests.cpu": "2", "limits.memory": "2Gi", "pods": "10", "limits.cpu": "4"},
            "used": {"requests.cpu": "500m", "limits.memory": "512Mi", "pods": "3"},
        },
    }
    assert row_cells("", "resourcequotas", obj, NOW) == [
        "compute",
        "pods: 3/10, requests.cpu: 500m/2",
        "limits.cpu: 0/4, limits.memory: 512Mi/2Gi",
        "5m",
    ]


def test_lease() -> None:
    obj = {
        "metadata": meta("kraken"),
        "spec": {"holderIdentity": "kraken", "leaseDurationSeconds": 40},
    }
    assert row_cells("coordination.k8s.io", "leases", obj, NOW) == ["kraken", "kraken", "5m"]
    assert row_cells("coordination.k8s.io", "leases", {"metadata": meta("x")}, NOW)[1] == ""


def test_future_creation_time_is_invalid() -> None:
    obj = {"metadata": {"name": "x", "creationTimestamp": "2024-06-01T12:00:05Z"}, "status": {}}
    assert row_cells("", "namespaces", obj, NOW)[2] == "<invalid>"
    naive_now = NOW.replace(tzinfo=None)
    assert row_cells("", "namespaces", {"metadata": meta("y")}, naive_now)[2] == "5m"


def test_quantities_print_in_canonical_form() -> None:
    pv = {
        "metadata": meta("pv"),
        "spec": {"capacity": {"storage": "1.5Gi"}, "accessModes": ["ReadWriteOnce"]},
        "status": {"phase": "Available"},
    }
    assert row_cells("", "persistentvolumes", pv, NOW)[1] == "1536Mi"
    pv["spec"]["capacity"] = {}
    assert row_cells("", "persistentvolumes", pv, NOW)[1] == "0"
    quota = {"metadata": meta("q"), "status": {"hard": {"cpu": "2000m"}, "used": {"cpu": "0.5"}}}
    assert row_cells("", "resourcequotas", quota, NOW)[1] == "cpu: 500m/2"
