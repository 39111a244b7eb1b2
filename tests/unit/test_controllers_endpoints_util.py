"""The rules both endpoints controllers share: membership, ports, hostnames, trigger times."""

from __future__ import annotations

import copy

from kubi.controllers.endpointutil import (
    TriggerTimeTracker,
    find_port,
    format_trigger_time,
    manages_endpoints,
    pod_endpoints_changed,
    service_selector,
    services_selecting,
    services_to_update,
    should_pod_be_in_endpoints,
    should_set_hostname,
)
from tests.unit.endpoints_fixtures import pod, service


def test_selector_rules() -> None:
    assert service_selector(service(selector={"app": "web"})) == {"app": "web"}
    # An empty selector is dropped on upstream's wire: such a Service selects nothing.
    assert service_selector(service(selector={})) is None
    assert not manages_endpoints(service(selector={}))
    assert not manages_endpoints(service(type="ExternalName"))
    assert manages_endpoints(service())


def test_services_selecting_matches_every_pair() -> None:
    services = [service("web", selector={"app": "web"}),
                service("fe", selector={"app": "web", "tier": "fe"}),
                service("manual", selector={})]
    assert services_selecting(services, {"app": "web"}) == {"demo/web"}
    assert services_selecting(services, {"app": "web", "tier": "fe"}) == {"demo/web", "demo/fe"}


def test_find_port_by_number_name_and_sidecar() -> None:
    p = pod("a", container_ports=[{"name": "http", "containerPort": 8080},
                                  {"name": "dns", "containerPort": 53, "protocol": "UDP"}])
    assert find_port(p, {"port": 80, "targetPort": 9000}) == 9000
    assert find_port(p, {"port": 80}) == 80
    assert find_port(p, {"port": 80, "targetPort": "http", "protocol": "TCP"}) == 8080
    # The protocol must match too.
    assert find_port(p, {"port": 53, "targetPort": "dns", "protocol": "TCP"}) is None
    assert find_port(p, {"port": 53, "targetPort": "dns", "protocol": "UDP"}) == 53
    assert find_port(p, {"port": 80, "targetPort": "metrics"}) is None
    p["spec"]["initContainers"] = [
        {"name": "once", "ports": [{"name": "metrics", "containerPort": 1}]},
        {"name": "side", "restartPolicy": "Always",
         "ports": [{"name": "metrics", "containerPort": 9090}]}]
    assert find_port(p, {"port": 80, "targetPort": "metrics"}) == 9090


def test_which_pods_belong() -> None:
    assert should_pod_be_in_endpoints(pod("a"), include_terminating=False)
    assert not should_pod_be_in_endpoints(pod("a", ip=None), include_terminating=True)
    assert not should_pod_be_in_endpoints(pod("a", phase="Succeeded"), include_terminating=True)
    assert not should_pod_be_in_endpoints(pod("a", phase="Failed"), include_terminating=True)
    terminating = pod("a", deleting=True)
    assert not should_pod_be_in_endpoints(terminating, include_terminating=False)
    assert should_pod_be_in_endpoints(terminating, include_terminating=True)


def test_hostname_only_under_the_service_named_by_the_subdomain() -> None:
    svc = service("nginx-demo")
    assert should_set_hostname(pod("web-0", hostname="web-0", subdomain="nginx-demo"), svc)
    assert not should_set_hostname(pod("web-0", hostname="web-0", subdomain="other"), svc)
    assert not should_set_hostname(pod("web-0", subdomain="nginx-demo"), svc)
    elsewhere = pod("web-0", hostname="web-0", subdomain="nginx-demo", namespace="other")
    assert not should_set_hostname(elsewhere, svc)


def test_pod_changes_that_matter() -> None:
    old = pod("a")
    assert pod_endpoints_changed(old, copy.deepcopy(old)) == (False, False)
    annotated = copy.deepcopy(old)
    annotated["metadata"]["annotations"] = {"x": "y"}
    assert pod_endpoints_changed(old, annotated) == (False, False)
    assert pod_endpoints_changed(old, pod("a", ready=False)) == (True, False)
    assert pod_endpoints_changed(old, pod("a", ip="10.42.0.6")) == (True, False)
    assert pod_endpoints_changed(old, pod("a", deleting=True)) == (True, False)
    assert pod_endpoints_changed(old, pod("a", labels={"app": "api"})) == (False, True)
    assert pod_endpoints_changed(old, pod("a", hostname="a", subdomain="web")) == (False, True)


def test_services_to_update_after_a_pod_change() -> None:
    services = [service("web", selector={"app": "web"}), service("api", selector={"app": "api"}),
                service("all", selector={"tier": "x"})]
    old = pod("a", labels={"app": "web", "tier": "x"})
    # Same resourceVersion: a resync, nothing to do.
    assert services_to_update(services, old, copy.deepcopy(old)) == set()
    not_ready = pod("a", labels={"app": "web", "tier": "x"}, ready=False, resource_version="2")
    assert services_to_update(services, old, not_ready) == {"demo/web", "demo/all"}
    # Only the labels moved: the Service selecting both before and after is untouched.
    moved = pod("a", labels={"app": "api", "tier": "x"}, resource_version="2")
    assert services_to_update(services, old, moved) == {"demo/web", "demo/api"}
    # Labels and readiness both moved: every Service involved.
    both = pod("a", labels={"app": "api", "tier": "x"}, ready=False, resource_version="2")
    assert services_to_update(services, old, both) == {"demo/web", "demo/api", "demo/all"}


def test_format_trigger_time_is_rfc3339nano() -> None:
    assert format_trigger_time(1735689600.0) == "2025-01-01T00:00:00Z"
    assert format_trigger_time(1735689600.5) == "2025-01-01T00:00:00.5Z"
    assert format_trigger_time(1735689600.000123) == "2025-01-01T00:00:00.000123Z"


def test_trigger_time_tracker() -> None:
    tracker = TriggerTimeTracker()
    svc = service()
    pods = [pod("a", ready_since="2025-01-01T00:02:00Z"),
            pod("b", ready_since="2025-01-01T00:03:00Z")]
    # A Service seen for the first time exports its creation time.
    assert tracker.compute(svc, pods) == "2025-01-01T00:00:00Z"
    # Nothing changed since: no trigger time (the annotation is removed).
    assert tracker.compute(svc, pods) is None
    # The earliest change since the last sync wins.
    changed = [pod("a", ready_since="2025-01-01T00:09:00Z"),
               pod("b", ready_since="2025-01-01T00:08:00Z"),
               pod("c", ready_since="2025-01-01T00:07:30Z")]
    assert tracker.compute(svc, changed) == "2025-01-01T00:07:30Z"
    # A Service re-created under the same name counts as a change.
    recreated = service()
    recreated["metadata"]["creationTimestamp"] = "2025-01-01T01:00:00Z"
    assert tracker.compute(recreated, changed) == "2025-01-01T01:00:00Z"
    tracker.delete_service("demo/web")
    assert tracker.compute(svc, changed) == "2025-01-01T00:00:00Z"
