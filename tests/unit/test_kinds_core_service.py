"""core/v1 Service and Endpoints: defaults, how a write is reconciled with the
stored Service, and the exact upstream validation messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubi.api import hooks

hooks.load()


def write(obj: dict, old: dict | None = None, sub: str = "") -> list[str]:
    hooks.apply_defaults(obj)
    hooks.prepare(obj, old)
    return [str(e) for e in hooks.validate(obj, old, sub)]


def service(**spec: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }


def test_cluster_ip_defaults() -> None:
    svc = service(selector={"app": "web"}, ports=[{"port": 80}])
    assert write(svc) == []
    assert svc["spec"] == {
        "selector": {"app": "web"},
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "sessionAffinity": "None",
        "type": "ClusterIP",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }
    assert svc["status"] == {"loadBalancer": {}}


def test_node_port_and_load_balancer_defaults() -> None:
    svc = service(type="LoadBalancer", ports=[{"port": 80, "targetPort": "http"}])
    assert write(svc) == []
    spec = svc["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["ports"][0]["targetPort"] == "http"


def test_client_ip_affinity_default_timeout() -> None:
    svc = service(ports=[{"port": 80}], sessionAffinity="ClientIP")
    assert write(svc) == []
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_headless_without_selector_requires_dual_stack_policy() -> None:
    svc = service(clusterIP="None")
    assert write(svc) == []
    assert svc["spec"]["clusterIPs"] == ["None"]
    assert svc["spec"]["ipFamilyPolicy"] == "RequireDualStack"


PORT_RANGE = "must be between 1 and 65535, inclusive"


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        ({"selector": {"app": "a"}}, ["spec.ports: Required value"]),
        (
            {"ports": [{"port": 80}, {"port": 81}]},
            ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"],
        ),
        (
            {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]},
            ['spec.ports[1].name: Duplicate value: "a"'],
        ),
        (
            {"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]},
            [
                (
                    'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
                    "AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, "
                    'IntVal:0, StrVal:""}, NodePort:0}'
                )
            ],
        ),
        (
            {"ports": [{"port": 0, "targetPort": 70000}]},
            [f"spec.ports[0].port: Invalid value: 0: {PORT_RANGE}"]
            + [f"spec.ports[0].targetPort: Invalid value: 70000: {PORT_RANGE}"],
        ),
        (
            {"ports": [{"port": 80, "protocol": "HTTP"}]},
            [
                (
                    'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: '
                    '"SCTP", "TCP", "UDP"'
                )
            ],
        ),
        (
            {"ports": [{"port": 80, "nodePort": 30000}]},
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
        ),
        (
            {"type": "Bogus", "ports": [{"port": 80}]},
            [
                (
                    'spec.type: Unsupported value: "Bogus": supported values: "ClusterIP", '
                    '"ExternalName", "LoadBalancer", "NodePort"'
                )
            ],
        ),
        (
            {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]},
            [
                "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
            ],
        ),
        (
            {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.2"], "ports": [{"port": 80}]},
            [
                (
                    'spec.clusterIPs: Invalid value: []string{"10.0.0.2"}: '
                    "first value must match `clusterIP`"
                )
            ],
        ),
        (
            {"clusterIP": "10.0.0.300", "ports": [{"port": 80}]},
            [
                (
                    'spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, '
                    "(e.g. 10.9.8.7 or 2001:db8::ffff)"
                )
            ],
        ),
        (
            {"externalIPs": ["127.0.0.1"], "ports": [{"port": 80}]},
            [
                (
                    'spec.externalIPs[0]: Invalid value: "127.0.0.1": '
                    "may not be in the loopback range (127.0.0.0/8, ::1/128)"
                )
            ],
        ),
        ({"type": "ExternalName"}, ["spec.externalName: Required value"]),
        ({"type": "ExternalName", "externalName": "db.example.com."}, []),
        (
            {"loadBalancerSourceRanges": ["10.0.0.0/8"], "ports": [{"port": 80}]},
            [
                "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"
            ],
        ),
        (
            {"selector": {"app": "a b"}, "ports": [{"port": 80}]},
            [
                (
                    'spec.selector: Invalid value: "a b": a valid label must be an empty string or consist '
                    "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
                    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                )
            ],
        ),
        (
            {
                "sessionAffinity": "ClientIP",
                "ports": [{"port": 80}],
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}},
            },
            [
                (
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: "
                    "must be greater than 0 and less than 86400"
                )
            ],
        ),
        (
            {"type": "NodePort", "externalTrafficPolicy": "Both", "ports": [{"port": 80}]},
            [
                (
                    'spec.externalTrafficPolicy: Unsupported value: "Both": supported values: '
                    '"Cluster", "Local"'
                )
            ],
        ),
        (
            {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]},
            ["spec.healthCheckNodePort: Required value"],
        ),
    ],
)
def test_service_validation(spec: dict, errors: list[str]) -> None:
    assert write(service(**spec)) == errors


def test_service_name_is_dns1035() -> None:
    svc = service(ports=[{"port": 80}])
    svc["metadata"]["name"] = "1web"
    assert write(svc)[0].startswith(
        'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case'
    )


def _stored(**spec: Any) -> dict:
    svc = service(**spec)
    write(svc)
    return svc


def test_update_keeps_allocated_values_when_resubmitted() -> None:
    old = _stored(type="NodePort", clusterIP="10.43.0.5", ports=[{"port": 80, "nodePort": 30080}])
    new = service(type="NodePort", ports=[{"port": 80}])
    assert write(new, old) == []
    assert new["spec"]["clusterIP"] == "10.43.0.5"
    assert new["spec"]["clusterIPs"] == ["10.43.0.5"]
    assert new["spec"]["ports"][0]["nodePort"] == 30080


def test_cluster_ip_may_not_change() -> None:
    old = _stored(clusterIP="10.43.0.5", ports=[{"port": 80}])
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.43.0.6"
    assert write(new, old) == [
        'spec.clusterIPs[0]: Invalid value: []string{"10.43.0.6"}: may not change once set'
    ]


def test_switch_to_cluster_ip_drops_node_ports_and_external_name_drops_ips() -> None:
    old = _stored(type="NodePort", clusterIP="10.43.0.5", ports=[{"port": 80, "nodePort": 30080}])
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    assert write(new, old) == []
    assert "nodePort" not in new["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in new["spec"]
    ext = copy.deepcopy(old)
    ext["spec"].update(type="ExternalName", externalName="example.com")
    assert write(ext, old) == []
    assert "clusterIP" not in ext["spec"] and "ipFamilies" not in ext["spec"]


def test_load_balancer_status_only_for_load_balancers() -> None:
    old = _stored(ports=[{"port": 80}])
    new = copy.deepcopy(old)
    new["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    assert [str(e) for e in hooks.validate(new, old, "status")] == [
        "status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"
    ]


# -- Endpoints -----------------------------------------------------------------------


def endpoints(subsets: list[dict]) -> dict:
    meta = {"name": "web", "namespace": "default"}
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": subsets}


@pytest.mark.parametrize(
    ("subsets", "errors"),
    [
        ([{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 80}]}], []),
        (
            [{"ports": [{"port": 80}]}],
            ["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"],
        ),
        (
            [{"addresses": [{"ip": "0.0.0.0"}]}],
            [
                'subsets[0].addresses[0].ip: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)'
            ],
        ),
        (
            [{"addresses": [{"ip": "169.254.1.1"}]}],
            [
                (
                    'subsets[0].addresses[0].ip: Invalid value: "169.254.1.1": '
                    "may not be in the link-local range (169.254.0.0/16, fe80::/10)"
                )
            ],
        ),
        (
            [
                {
                    "addresses": [{"ip": "10.42.0.5"}],
                    "ports": [{"port": 80}, {"port": 81, "name": "b"}],
                }
            ],
            ["subsets[0].ports[0].name: Required value"],
        ),
    ],
)
def test_endpoints_validation(subsets: list[dict], errors: list[str]) -> None:
    ep = endpoints(subsets)
    assert write(ep) == errors
    for subset in ep["subsets"]:
        assert all(port["protocol"] == "TCP" for port in subset.get("ports") or [])
