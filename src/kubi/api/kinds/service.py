"""core/v1 Service: defaults, preparation and validation as upstream v1.33
has them.

A Service is a union discriminated by `type`. The defaulter fills in what
upstream's v1 defaults fill in; the preparer reconciles the IP and port fields
of a write with the stored object (see `service_ips`) before validation.
Allocating cluster IPs and node ports is the API server's job; what is validated
here is whatever values the object carries when it reaches validation.
Endpoints are registered from `endpoints`, imported at the bottom.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from kubi.api.hooks import defaulter, preparer, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import (
    GoLiteral,
    cidr_errors,
    dns_label,
    dns_subdomain,
    ip_errors,
    meta_create,
    meta_update,
    non_special_ip,
    parse_ip,
    port_num_or_name,
    protocol_errors,
    qualified_name,
    section,
)
from kubi.api.kinds.service_ips import (
    cluster_ips_related_fields,
    cluster_ips_update,
    default_ip_families,
    drop_type_dependent_fields,
    externally_accessible,
    ip_families_update,
    is_headless,
    needs_health_check,
    normalize_cluster_ips,
    patch_allocated_values,
    trim_for_downgrade,
)

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
DEFAULT_AFFINITY_SECONDS = 10800
MAX_AFFINITY_SECONDS = 86400
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
TOPOLOGY_HINTS_ANNOTATION = "service.kubernetes.io/topology-aware-hints"
TOPOLOGY_MODE_ANNOTATION = "service.kubernetes.io/topology-mode"
ONLY_LB = "may only be used when `type` is 'LoadBalancer'"


# -- defaults ------------------------------------------------------------------------


@defaulter("v1", "Service")
def default_service(obj: dict) -> None:
    spec = section(obj, "spec")
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {
                "clientIP": {"timeoutSeconds": DEFAULT_AFFINITY_SECONDS}
            }
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in spec.get("ports") or []:
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in (
        "NodePort",
        "LoadBalancer",
        "ClusterIP",
    ):
        spec["internalTrafficPolicy"] = "Cluster"
    status = section(obj, "status")
    balancer = section(status, "loadBalancer")
    if spec["type"] == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        for ingress in balancer.get("ingress") or []:
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"


# -- preparation ---------------------------------------------------------------------


@preparer("v1", "Service")
def prepare_service(obj: dict, old: dict | None) -> None:
    spec = section(obj, "spec")
    if old is None:
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        default_ip_families(spec, None)
        return
    old_spec = old.get("spec") or {}
    patch_allocated_values(spec, old_spec)
    normalize_cluster_ips(spec, old_spec)
    drop_type_dependent_fields(spec, old_spec)
    trim_for_downgrade(spec, old_spec)
    default_ip_families(spec, old_spec)


# -- validation ----------------------------------------------------------------------


@validator("v1", "Service")
def validate_service(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    if old is None:
        return _validate_service(obj)
    errs = meta_update(obj, old)
    if subresource == "status":
        return errs + _load_balancer_status(obj)
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    errs.extend(cluster_ips_update(spec, old_spec))
    errs.extend(ip_families_update(spec, old_spec))
    errs.extend(_load_balancer_class(spec, old_spec))
    both_check = needs_health_check(old_spec) and needs_health_check(spec)
    if both_check and spec.get("healthCheckNodePort") != old_spec.get("healthCheckNodePort"):
        errs.append(forbidden("spec.healthCheckNodePort", "field is immutable"))
    return errs + _validate_service(obj)


def _validate_service(obj: dict) -> list[FieldError]:
    errs = meta_create(obj, namespaced=True, name_fn=m.dns1035_label)
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    spec = obj.get("spec") or {}
    kind = spec.get("type")
    errs.extend(_topology_annotations(annotations))
    ports = spec.get("ports") or []
    if not ports and not is_headless(spec) and kind != "ExternalName":
        errs.append(required("spec.ports"))
    errs.extend(_type_specific(spec))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errs.extend(_service_port(port, len(ports) > 1, names, f"spec.ports[{i}]"))
    if spec.get("selector") is not None:
        errs.extend(m.validate_labels(spec.get("selector"), "spec.selector"))
    errs.extend(_session_affinity(spec))
    errs.extend(cluster_ips_related_fields(spec))
    for i, ip in enumerate(spec.get("externalIPs") or []):
        path = f"spec.externalIPs[{i}]"
        errs.extend(ip_errors(ip, path) or non_special_ip(ip, path))
    if not kind:
        errs.append(required("spec.type"))
    elif kind not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", kind, SERVICE_TYPES))
    errs.extend(_port_clashes(spec))
    errs.extend(_source_ranges(spec, annotations))
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts", ONLY_LB))
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts"))
    errs.extend(_load_balancer_class(spec, None))
    errs.extend(_external_traffic_policy(spec))
    errs.extend(_internal_traffic_policy(spec))
    distribution = spec.get("trafficDistribution")
    if distribution is not None and distribution != "PreferClose":
        errs.append(not_supported("spec.trafficDistribution", distribution, ["PreferClose"]))
    return errs


def _topology_annotations(annotations: dict) -> list[FieldError]:
    hints, mode = (
        annotations.get(TOPOLOGY_HINTS_ANNOTATION),
        annotations.get(TOPOLOGY_MODE_ANNOTATION),
    )
    if hints is not None and mode is not None and hints != mode:
        return [
            invalid(
                f"metadata.annotations[{TOPOLOGY_MODE_ANNOTATION}]",
                mode,
                f"must match annotations[{TOPOLOGY_HINTS_ANNOTATION}] when both are specified",
            )
        ]
    return []


def _type_specific(spec: dict) -> list[FieldError]:
    kind = spec.get("type")
    if kind in ("LoadBalancer", "NodePort") and is_headless(spec):
        return [
            invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services")
        ]
    if kind != "ExternalName":
        return []
    errs: list[FieldError] = []
    for field in ("clusterIPs", "ipFamilies"):
        if spec.get(field):
            errs.append(forbidden(f"spec.{field}", "may not be set for ExternalName services"))
    if spec.get("ipFamilyPolicy") is not None:
        errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
    # A CNAME target may end in a dot to mark it fully qualified.
    cname = (spec.get("externalName") or "").removesuffix(".")
    if cname:
        errs.extend(dns_subdomain(cname, "spec.externalName"))
    else:
        errs.append(required("spec.externalName"))
    return errs


def _service_port(port: dict, require_name: bool, names: set[str], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs.extend(dns_label(name, f"{path}.name"))
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        else:
            names.add(name)
    number = port.get("port", 0)
    errs.extend(invalid(f"{path}.port", number, msg) for msg in m.is_valid_port_num(number))
    errs.extend(protocol_errors(port.get("protocol"), f"{path}.protocol"))
    errs.extend(port_num_or_name(port.get("targetPort", 0), f"{path}.targetPort"))
    if port.get("appProtocol") is not None:
        errs.extend(qualified_name(port["appProtocol"], f"{path}.appProtocol"))
    return errs


def _session_affinity(spec: dict) -> list[FieldError]:
    affinity = spec.get("sessionAffinity")
    if not affinity:
        return [required("spec.sessionAffinity")]
    if affinity not in ("ClientIP", "None"):
        return [not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))]
    path = "spec.sessionAffinityConfig"
    config = spec.get("sessionAffinityConfig")
    if affinity == "None":
        if config is not None:
            return [forbidden(path, "must not be set when session affinity is None")]
        return []
    why = "when session affinity type is ClientIP"
    if config is None:
        return [required(path, why)]
    if config.get("clientIP") is None:
        return [required(f"{path}.clientIP", why)]
    timeout = config["clientIP"].get("timeoutSeconds")
    if timeout is None:
        return [required(f"{path}.clientIP.timeoutSeconds", why)]
    if not 0 < timeout <= MAX_AFFINITY_SECONDS:
        return [
            invalid(
                f"{path}.clientIP.timeoutSeconds",
                timeout,
                f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}",
            )
        ]
    return []


def _service_port_literal(protocol: Any, number: Any) -> GoLiteral:
    return GoLiteral(
        f'core.ServicePort{{Name:"", Protocol:"{protocol or ""}", AppProtocol:(*string)(nil), '
        f'Port:{number or 0}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, '
        "NodePort:0}"
    )


def _port_clashes(spec: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    ports = spec.get("ports") or []
    if spec.get("type") == "ClusterIP":
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                errs.append(
                    forbidden(
                        f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"
                    )
                )
    seen_node: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        if not port.get("nodePort"):
            continue
        key = (port.get("protocol"), port["nodePort"])
        if key in seen_node:
            errs.append(duplicate(f"spec.ports[{i}].nodePort", port["nodePort"]))
        seen_node.add(key)
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        key = (port.get("protocol"), port.get("port"))
        if key in seen:
            errs.append(duplicate(f"spec.ports[{i}]", _service_port_literal(*key)))
        seen.add(key)
    return errs


def _source_ranges(spec: dict, annotations: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    ranges = spec.get("loadBalancerSourceRanges") or []
    is_lb = spec.get("type") == "LoadBalancer"
    if ranges:
        # Upstream spells this path with a capital L.
        path = "spec.LoadBalancerSourceRanges"
        if not is_lb:
            errs.append(forbidden(path, ONLY_LB))
        for i, value in enumerate(ranges):
            errs.extend(cidr_errors(str(value).strip(), f"{path}[{i}]"))
    elif SOURCE_RANGES_ANNOTATION in annotations:
        path = f"metadata.annotations[{SOURCE_RANGES_ANNOTATION}]"
        if not is_lb:
            errs.append(forbidden(path, ONLY_LB))
        value = str(annotations[SOURCE_RANGES_ANNOTATION]).strip()
        if value:
            for cidr in value.split(","):
                errs.extend(cidr_errors(cidr.strip(), path))
    return errs


def _load_balancer_class(spec: dict, old: dict | None) -> list[FieldError]:
    errs: list[FieldError] = []
    path = "spec.loadBalancerClass"
    is_lb = spec.get("type") == "LoadBalancer"
    if old is not None:
        both_lb = is_lb and old.get("type") == "LoadBalancer"
        if both_lb and spec.get("loadBalancerClass") != old.get("loadBalancerClass"):
            errs.append(invalid(path, spec.get("loadBalancerClass"), "may not change once set"))
        return errs
    if spec.get("loadBalancerClass") is not None:
        if is_lb:
            errs.extend(qualified_name(spec["loadBalancerClass"], path))
        else:
            errs.append(forbidden(path, ONLY_LB))
    return errs


def _external_traffic_policy(spec: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    policy = spec.get("externalTrafficPolicy") or ""
    if not externally_accessible(spec):
        if policy:
            errs.append(
                invalid(
                    "spec.externalTrafficPolicy",
                    policy,
                    "may only be set for externally-accessible services",
                )
            )
    elif not policy:
        errs.append(required("spec.externalTrafficPolicy"))
    elif policy not in ("Cluster", "Local"):
        errs.append(not_supported("spec.externalTrafficPolicy", policy, ("Cluster", "Local")))
    port = spec.get("healthCheckNodePort") or 0
    if not needs_health_check(spec):
        if port:
            errs.append(
                invalid(
                    "spec.healthCheckNodePort",
                    port,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is "
                    "'Local'",
                )
            )
    elif not port:
        errs.append(required("spec.healthCheckNodePort"))
    else:
        errs.extend(
            invalid("spec.healthCheckNodePort", port, msg) for msg in m.is_valid_port_num(port)
        )
    return errs


def _internal_traffic_policy(spec: dict) -> list[FieldError]:
    policy = spec.get("internalTrafficPolicy")
    if policy is None:
        # Other types go unchecked, as upstream never checked them.
        if spec.get("type") in ("NodePort", "LoadBalancer", "ClusterIP"):
            return [required("spec.internalTrafficPolicy")]
        return []
    if policy not in ("Cluster", "Local"):
        return [not_supported("spec.internalTrafficPolicy", policy, ("Cluster", "Local"))]
    return []


def _load_balancer_status(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") or {}
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    path = "status.loadBalancer.ingress"
    if spec.get("type") != "LoadBalancer" and ingress:
        return [forbidden(path, "may only be used when `spec.type` is 'LoadBalancer'")]
    errs: list[FieldError] = []
    for i, item in enumerate(ingress):
        here = f"{path}[{i}]"
        ip, mode, host = item.get("ip") or "", item.get("ipMode"), item.get("hostname") or ""
        if ip:
            errs.extend(ip_errors(ip, f"{here}.ip"))
        if mode is None:
            if ip:
                errs.append(required(f"{here}.ipMode", "must be specified when `ip` is set"))
        elif not ip:
            errs.append(forbidden(f"{here}.ipMode", "may not be specified when `ip` is not set"))
        elif mode not in ("Proxy", "VIP"):
            errs.append(not_supported(f"{here}.ipMode", mode, ("Proxy", "VIP")))
        if host:
            errs.extend(dns_subdomain(host, f"{here}.hostname"))
            if parse_ip(host) is not None:
                errs.append(
                    invalid(f"{here}.hostname", host, "must be a DNS name, not an IP address")
                )
    return errs


# Endpoints registers itself on import.
from kubi.api.kinds import endpoints  # noqa: F401
