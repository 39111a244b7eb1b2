"""The IP fields of a core/v1 Service (clusterIP, clusterIPs, ipFamilies,
ipFamilyPolicy) and the other type-dependent fields: how a write reconciles
them with the stored object, and how they are validated, as upstream v1.33 does.

Clients set these linked fields in different ways: old ones send only
`clusterIP`, and `kubectl apply` may resend a manifest without the allocated
`clusterIP` or `nodePort`. The reconciling functions run before validation and
keep what the server allocated unless the writer clearly changed it. The
cluster this serves is single-stack, so families default to the primary one.
"""

from __future__ import annotations

from kubi.api.errors import FieldError, duplicate, invalid, not_supported, required
from kubi.api.kinds._shared import as_ipv4, ip_errors, is_dual_stack, is_ipv6, parse_ip

# -- predicates, named as upstream names them -----------------------------------------


def externally_accessible(spec: dict) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )


def needs_health_check(spec: dict) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def is_headless(spec: dict) -> bool:
    return (spec.get("clusterIPs") or []) == ["None"]


def needs_cluster_ip(spec: dict) -> bool:
    return spec.get("type") != "ExternalName"


def needs_node_port(spec: dict) -> bool:
    return spec.get("type") in ("NodePort", "LoadBalancer")


# -- reconciling a write with the stored object ----------------------------------------


def patch_allocated_values(spec: dict, old: dict) -> None:
    """Resubmitting a manifest without the allocated values keeps them."""
    if needs_cluster_ip(old) and needs_cluster_ip(spec):
        if not spec.get("clusterIP") and old.get("clusterIP"):
            spec["clusterIP"] = old["clusterIP"]
        if not spec.get("clusterIPs") and old.get("clusterIPs"):
            spec["clusterIPs"] = list(old["clusterIPs"])
    if needs_node_port(old) and needs_node_port(spec):
        by_name = {p.get("name") or "": p.get("nodePort") for p in old.get("ports") or []}
        for port in spec.get("ports") or []:
            if not port.get("nodePort") and by_name.get(port.get("name") or ""):
                port["nodePort"] = by_name[port.get("name") or ""]
    both_check = needs_health_check(old) and needs_health_check(spec)
    if both_check and not spec.get("healthCheckNodePort") and old.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old["healthCheckNodePort"]


def normalize_cluster_ips(spec: dict, old: dict) -> None:
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


def drop_type_dependent_fields(spec: dict, old: dict) -> None:
    """Clear fields the new type has no use for, unless the user changed them too."""
    if needs_cluster_ip(old) and not needs_cluster_ip(spec):
        if spec.get("clusterIP") == old.get("clusterIP") and spec.get("clusterIPs") == old.get(
            "clusterIPs"
        ):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == old.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == old.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if needs_node_port(old) and not needs_node_port(spec):
        old_ports = {p.get("nodePort") for p in old.get("ports") or [] if p.get("nodePort")}
        new_ports = {p.get("nodePort") for p in spec.get("ports") or [] if p.get("nodePort")}
        if new_ports <= old_ports:
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)
    check_dropped = needs_health_check(old) and not needs_health_check(spec)
    if check_dropped and spec.get("healthCheckNodePort") == old.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    etp_dropped = externally_accessible(old) and not externally_accessible(spec)
    if etp_dropped and spec.get("externalTrafficPolicy") == old.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
    if old.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer":
        allocate = spec.get("allocateLoadBalancerNodePorts")
        if allocate is not None and allocate == old.get("allocateLoadBalancerNodePorts"):
            spec.pop("allocateLoadBalancerNodePorts", None)
        if spec.get("loadBalancerClass") == old.get("loadBalancerClass"):
            spec.pop("loadBalancerClass", None)


def trim_for_downgrade(spec: dict, old: dict) -> None:
    """Switching a dual-stack Service to SingleStack drops the secondary family."""
    was_dual = old.get("ipFamilyPolicy") in ("RequireDualStack", "PreferDualStack")
    if was_dual and spec.get("ipFamilyPolicy") == "SingleStack":
        if len(spec.get("clusterIPs") or []) > 1:
            spec["clusterIPs"] = spec["clusterIPs"][:1]
        if len(spec.get("ipFamilies") or []) > 1:
            spec["ipFamilies"] = spec["ipFamilies"][:1]


def default_ip_families(spec: dict, old: dict | None) -> None:
    """ipFamilyPolicy and ipFamilies for a single-stack (IPv4 or IPv6) cluster."""
    if not needs_cluster_ip(spec):
        return
    before = old if old is not None and needs_cluster_ip(old) else {}
    if spec.get("ipFamilyPolicy") is None:
        if before.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = before["ipFamilyPolicy"]
        elif is_headless(spec) and not spec.get("selector"):
            spec["ipFamilyPolicy"] = "RequireDualStack"
        else:
            spec["ipFamilyPolicy"] = "SingleStack"
    if spec.get("ipFamilies"):
        return
    if before.get("ipFamilies") and spec.get("clusterIPs") == before.get("clusterIPs"):
        spec["ipFamilies"] = list(before["ipFamilies"])
        return
    families = [
        "IPv6" if is_ipv6(ip) else "IPv4"
        for ip in spec.get("clusterIPs") or []
        if parse_ip(ip) is not None
    ]
    spec["ipFamilies"] = families or ["IPv4"]


# -- validation --------------------------------------------------------------------------


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
                    invalid(
                        f"{path}[{i}]",
                        value,
                        f"expected an IPv4 value as indicated by `ipFamilies[{i}]`",
                    )
                )
            if families[i] == "IPv6" and not is_ipv6(value):
                errs.append(
                    invalid(
                        f"{path}[{i}]",
                        value,
                        f"expected an IPv6 value as indicated by `ipFamilies[{i}]`",
                    )
                )
    return errs


def cluster_ips_update(spec: dict, old: dict) -> list[FieldError]:
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
            errs.append(
                invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset")
            )
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


def ip_families_update(spec: dict, old: dict) -> list[FieldError]:
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
