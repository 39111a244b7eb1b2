"""core/v1 Service and Endpoints: defaults, the field juggling a Service write
needs, and validation, as upstream v1.33 has them.

A Service is a union discriminated by `type`, with linked fields that clients
set in different ways (old clients send only `clusterIP`, `kubectl apply` may
resend a manifest without the allocated `clusterIP` or `nodePort`). The
preparer reconciles those as upstream's strategy does, before validation.
Allocating cluster IPs and node ports is the API server's job; what is validated
here is whatever values the object carries when it reaches validation.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
)
from kubi.api.hooks import defaulter, preparer, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import (
    GoLiteral,
    cidr_errors,
    dns_label,
    dns_subdomain,
    ip_errors,
    is_dual_stack,
    is_ipv6,
    meta_create,
    meta_update,
    non_special_ip,
    parse_ip,
    port_num_or_name,
    protocol_errors,
    qualified_name,
    as_ipv4,
)

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
DEFAULT_AFFINITY_SECONDS = 10800
MAX_AFFINITY_SECONDS = 86400
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
TOPOLOGY_HINTS_ANNOTATION = "service.kubernetes.io/topology-aware-hints"
TOPOLOGY_MODE_ANNOTATION = "service.kubernetes.io/topology-mode"
ONLY_LB = "may only be used when `type` is 'LoadBalancer'"


# -- small predicates, named as upstream names them ----------------------------------


def externally_accessible(spec: dict) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )


def needs_health_check(spec: dict) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def is_headless(spec: dict) -> bool:
    return (spec.get("clusterIPs") or []) == ["None"]


def _needs_cluster_ip(spec: dict) -> bool:
    return spec.get("type") != "ExternalName"


def _needs_node_port(spec: dict) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


# -- defaults ------------------------------------------------------------------------


@defaulter("v1", "Service")
def default_service(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
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
    status = obj.setdefault("status", {})
    balancer = status.setdefault("loadBalancer", {})
    if spec["type"] == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        for ingress in balancer.get("ingress") or []:
            if ingress.get("ip") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"


# -- preparation ---------------------------------------------------------------------


@preparer("v1", "Service")
def prepare_service(obj: dict, old: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    if old is None:
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        _default_ip_families(spec, None)
        return
    old_spec = old.get("spec") or {}
    _patch_allocated_values(spec, old_spec)
    _normalize_cluster_ips(spec, old_spec)
    _drop_type_dependent_fields(spec, old_spec)
    _trim_for_downgrade(spec, old_spec)
    _default_ip_families(spec, old_spec)


def _patch_allocated_values(spec: dict, old: dict) -> None:
    """Resubmitting a manifest without the allocated values keeps them."""
    if _needs_cluster_ip(old) and _needs_cluster_ip(spec):
        if not spec.get("clusterIP") and old.get("clusterIP"):
            spec["clusterIP"] = old["clusterIP"]
        if not spec.get("clusterIPs") and old.get("clusterIPs"):
            spec["clusterIPs"] = list(old["clusterIPs"])
    if _needs_node_port(old) and _needs_node_port(spec):
        by_name = {p.get("name", ""): p.get("nodePort") for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            if not port.get("nodePort") and by_name.get(port.get("name", "")):
                port["nodePort"] = by_name[port.get("name", "")]
    if needs_health_check(old) and needs_health_check(spec):
        if not spec.get("healthCheckNodePort") and old.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = old["healthCheckNodePort"]


def _normalize_cluster_ips(spec: dict, old: dict) -> None:
    """Keep `clusterIP` and `clusterIPs` in step for clients that only know one."""
    new_ip, old_ip = spec.get("clusterIP") or "", old.get("clusterIP") or ""
    old_ips = old.get("clusterIPs") or []
    if old_ips and not spec.get("clusterIPs") and new_ip == old_ip:
        spec["clusterIPs"] = list(old_ips)
    if new_ip != old_ip and (spec.get("clusterIPs") or []) == old_ips:
        if old_ip and not new_ip:
            spec.pop("clusterIPs", None)
        else:
            spec["clusterIPs"] = [new_ip]


def _drop_type_dependent_fields(spec: dict, old: dict) -> None:
    """Clear fields the new type has no use for, unless the user changed them too."""
    if _needs_cluster_ip(old) and not _needs_cluster_ip(spec):
        if spec.get("clusterIP") == old.get("clusterIP") and spec.get("clusterIPs") == old.get(
            "clusterIPs"
        ):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == old.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == old.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if _needs_node_port(old) and not _needs_node_port(spec):
        old_ports = {p.get("nodePort") for p in old.get("ports") or [] if p.get("nodePort")}
        new_ports = {p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort")}
        if new_ports <= old_ports:
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)
    if needs_health_check(old) and not needs_health_check(spec):
        if spec.get("healthCheckNodePort") == old.get("healthCheckNodePort"):
            spec.pop("healthCheckNodePort", None)
    if old.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer":
        allocate = spec.get("allocateLoadBalancerNodePorts")
        if allocate is not None and allocate == old.get("allocateLoadBalancerNodePorts"):
            spec.pop("allocateLoadBalancerNodePorts", None)
        if spec.get("loadBalancerClass") == old.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)


def _trim_for_downgrade(spec: dict, old: dict) -> None:
    """Switching a dual-stack Service to SingleStack drops the secondary family."""
    was_dual = old.get("ipFamilyPolicy") in ("RequireDualStack", "PreferDualStack")
    if was_dual and spec.get("ipFamilyPolicy") == "SingleStack":
        if len(spec.get("clusterIPs") or []) > 1:
            spec["clusterIPs"] = spec["clusterIPs"][:1]
        if len(spec.get("ipFamilies") or []) > 1:
            spec["ipFamilies"] = spec["ipFamilies"][:1]


def _default_ip_families(spec: dict, old: dict | None) -> None:
    """ipFamilyPolicy and ipFamilies for a single-stack (IPv4 or IPv6) cluster."""
    if not _needs_cluster_ip(spec):
        return
    same_type = old is not None and _needs_cluster_ip(old)
    if spec.get("ipFamilyPolicy") is None:
        if same_type and old.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = old["ipFamilyPolicy"]
        elif is_headless(spec) and not spec.get("selector"):
            spec["ipFamilyPolicy"] = "RequireDualStack"
        else:
            spec["ipFamilyPolicy"] = "SingleStack"
    if spec.get("ipFamilies"):
        return
    if same_type and old.get("ipFamilies") and spec.get("clusterIPs") == old.get("clusterIPs"):
        spec["ipFamilies"] = list(old["ipFamilies"])
        return
    families = [
        "IPv6" if is_ipv6(ip) else "IPv4"
        for ip in spec.get("clusterIPs") or []
        if parse_ip(ip) is not None
    ]
    spec["ipFamilies"] = families or ["IPv4"]


# -- validation ----------------------------------------------------------------------


@validator("v1", "Service")
def validate_service(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    if old is None:
        return _validate_service(obj)
    errs = meta_update(obj, old)
    if subresource == "status":
        return errs + _load_balancer_status(obj)
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    errs.extend(_cluster_ips_update(spec, old_spec))
    errs.extend(_ip_families_update(spec, old_spec))
    errs.extend(_load_balancer_class(spec, old_spec))
    if needs_health_check(old_spec) and needs_health_check(spec):
        if spec.get("healthCheckNodePort") != old_spec.get("healthCheckNodePort"):
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
    hints, mode = annotations.get(TOPOLOGY_HINTS_ANNOTATION), annotations.get(TOPOLOGY_MODE_ANNOTATION)
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
                    forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
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
        if is_lb and old.get("type") == "LoadBalancer":
            if spec.get("loadBalancerClass") != old.get("loadBalancerClass"):
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
        errs.extend(invalid("spec.healthCheckNodePort", port, msg) for msg in m.is_valid_port_num(port))
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


def cluster_ips_related_fields(spec: dict) -> list[FieldError]:
    """clusterIP, clusterIPs, ipFamilies and ipFamilyPolicy, checked together."""
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    ips = spec.get("clusterIPs") or []
    ip = spec.get("clusterIP") or ""
    path = "spec.clusterIPs"
    if ip:
        if not ips:
            errs.append(required(path))
        elif ips[0] != ip:
            errs.append(invalid(path, ips, "first value must match `clusterIP`"))
    elif ips:
        errs.append(invalid(path, ips, "must be empty when `clusterIP` is not specified"))
    seen: set[str] = set()
    for i, family in enumerate(spec.get("ipFamilies") or []):
        if family not in ("IPv4", "IPv6"):
            errs.append(not_supported(f"spec.ipFamilies[{i}]", family, ("IPv4", "IPv6")))
        if family in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", family))
        seen.add(family)
    policy = spec.get("ipFamilyPolicy")
    policies = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if policy is not None and policy not in policies:
        errs.append(not_supported("spec.ipFamilyPolicy", policy, policies))
    bad_ips = False
    for i, value in enumerate(ips):
        if i == 0 and value == "None":
            if len(ips) > 1:
                bad_ips = True
                errs.append(invalid(path, ips, "'None' must be the first and only value"))
            continue
        problems = ip_errors(value, f"{path}[{i}]")
        bad_ips = bad_ips or bool(problems)
        errs.extend(problems)
    if len(ips) > 2:
        errs.append(invalid(path, ips, "may only hold up to 2 values"))
    # Further checks would only restate a bad address as a family mismatch.
    if bad_ips:
        return errs
    if len(ips) > 1:
        versions = [as_ipv4(parse_ip(v)).version for v in ips]  # type: ignore[arg-type]
        if not is_dual_stack(versions) or len(ips) > 2:
            errs.append(invalid(path, ips, "may specify no more than one IP for each IP family"))
    families = spec.get("ipFamilies") or []
    if not is_headless(spec) and ips and families:
        for i, value in enumerate(ips[: len(families)]):
            if families[i] == "IPv4" and is_ipv6(value):
                errs.append(
                    invalid(f"{path}[{i}]", value, f"expected an IPv4 value as indicated by `ipFamilies[{i}]`")
                )
            if families[i] == "IPv6" and not is_ipv6(value):
                errs.append(
                    invalid(f"{path}[{i}]", value, f"expected an IPv6 value as indicated by `ipFamilies[{i}]`")
                )
    return errs


def _cluster_ips_update(spec: dict, old: dict) -> list[FieldError]:
    if "ExternalName" in (spec.get("type"), old.get("type")):
        return []
    if is_headless(spec) and is_headless(old):
        return []
    new_ips, old_ips = spec.get("clusterIPs") or [], old.get("clusterIPs") or []
    unchanged = "may not change once set"
    errs: list[FieldError] = []
    if len(new_ips) == len(old_ips):
        for i, value in enumerate(old_ips):
            if value != new_ips[i]:
                errs.append(invalid(f"spec.clusterIPs[{i}]", new_ips, unchanged))
    elif len(old_ips) > len(new_ips):
        if not new_ips:
            errs.append(invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset"))
        elif new_ips[0] != old_ips[0]:
            errs.append(invalid("spec.clusterIPs[0]", new_ips, unchanged))
        if len(new_ips) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            errs.append(
                invalid(
                    "spec.ipFamilyPolicy",
                    spec.get("ipFamilyPolicy"),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                )
            )
    elif old_ips and new_ips[0] != old_ips[0]:
        errs.append(invalid("spec.clusterIPs[0]", new_ips, unchanged))
    return errs


def _ip_families_update(spec: dict, old: dict) -> list[FieldError]:
    if "ExternalName" in (spec.get("type"), old.get("type")):
        return []
    if is_headless(spec) or is_headless(old):
        return []
    new, before = spec.get("ipFamilies") or [], old.get("ipFamilies") or []
    ips = spec.get("clusterIPs") or []
    unchanged = "may not change once set"
    errs: list[FieldError] = []
    if len(new) == len(before):
        for i, family in enumerate(before):
            if family != new[i]:
                errs.append(invalid("spec.ipFamilies[0]", new, unchanged))
    elif len(before) > len(new):
        if not ips:
            errs.append(invalid("spec.ipFamilies[0]", new, "primary ipFamily can not be unset"))
        if new and new[0] != before[0]:
            errs.append(invalid("spec.ipFamilies[0]", ips, unchanged))
        if len(new) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            errs.append(
                invalid(
                    "spec.ipFamilyPolicy",
                    spec.get("ipFamilyPolicy"),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                )
            )
    elif before and new and new[0] != before[0]:
        errs.append(invalid("spec.ipFamilies[0]", ips, unchanged))
    return errs


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
                errs.append(invalid(f"{here}.hostname", host, "must be a DNS name, not an IP address"))
    return errs


# -- Endpoints -----------------------------------------------------------------------


@defaulter("v1", "Endpoints")
def default_endpoints(obj: dict) -> None:
    for subset in obj.get("subsets") or []:
        for port in subset.get("ports") or []:
            if not port.get("protocol"):
                port["protocol"] = "TCP"


@validator("v1", "Endpoints")
def validate_endpoints(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    errs = meta_update(obj, old) if old is not None else []
    errs.extend(meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain))
    for i, subset in enumerate(obj.get("subsets") or []):
        path = f"subsets[{i}]"
        addresses = subset.get("addresses") or []
        not_ready = subset.get("notReadyAddresses") or []
        if not addresses and not not_ready:
            errs.append(required(path, "must specify `addresses` or `notReadyAddresses`"))
        for j, address in enumerate(addresses):
            errs.extend(_endpoint_address(address, f"{path}.addresses[{j}]"))
        for j, address in enumerate(not_ready):
            errs.extend(_endpoint_address(address, f"{path}.notReadyAddresses[{j}]"))
        ports = subset.get("ports") or []
        for j, port in enumerate(ports):
            errs.extend(_endpoint_port(port, len(ports) > 1, f"{path}.ports[{j}]"))
    return errs


def _endpoint_address(address: dict, path: str) -> list[FieldError]:
    ip = address.get("ip", "")
    errs = ip_errors(ip, f"{path}.ip")
    if address.get("hostname"):
        errs.extend(dns_label(address["hostname"], f"{path}.hostname"))
    if address.get("nodeName") is not None:
        node = address["nodeName"]
        errs.extend(invalid(f"{path}.nodeName", node, msg) for msg in m.dns1123_subdomain(node))
    return errs + non_special_ip(ip, f"{path}.ip")


def _endpoint_port(port: dict, require_name: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs.extend(dns_label(name, f"{path}.name"))
    number = port.get("port", 0)
    errs.extend(invalid(f"{path}.port", number, msg) for msg in m.is_valid_port_num(number))
    errs.extend(protocol_errors(port.get("protocol"), f"{path}.protocol"))
    if port.get("appProtocol") is not None:
        errs.extend(qualified_name(port["appProtocol"], f"{path}.appProtocol"))
    return errs
