"""Validation of a PodSpec and of a PodTemplateSpec, in upstream's order.

`validate_pod_spec` runs the whole of ValidatePodSpec: volumes first (so that
containers can resolve their mounts), the three container lists, then the
pod-wide fields (restartPolicy, dnsPolicy, nodeSelector, securityContext,
affinity, dnsConfig, gates, topology spread, names, tolerations, ...). It
expects a defaulted spec, like upstream, so a missing `restartPolicy` is a
`Required value`. `validate_pod_template_spec` is what every workload uses for
its `spec.template`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kubi.api.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from kubi.api.kinds import meta
from kubi.api.kinds.container_validation import (
    PodContext,
    validate_containers,
    validate_ephemeral_containers,
    validate_init_containers,
)
from kubi.api.kinds.resources import validate_resource_requirements
from kubi.api.kinds.security import validate_host_namespaces, validate_pod_security_context
from kubi.api.kinds.volume_validation import validate_volumes

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_MAX_INT32 = 2**31 - 1


def _valid_ip(value: Any, path: str) -> list[FieldError]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [
            invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        ]
    return []


def validate_tolerations(tolerations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, tol in enumerate(tolerations or []):
        tol = tol or {}
        ipath = f"{path}[{i}]"
        key, op = tol.get("key") or "", tol.get("operator") or ""
        value, effect = tol.get("value") or "", tol.get("effect") or ""
        if key:
            errs.extend(invalid(f"{ipath}.key", key, m) for m in meta.is_qualified_name(key))
        if not key and op != "Exists":
            errs.append(
                invalid(
                    f"{ipath}.operator",
                    op,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(
                invalid(
                    f"{ipath}.effect",
                    effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if op in ("Equal", ""):
            msgs = meta.is_valid_label_value(value)
            if msgs:
                errs.append(invalid(f"{ipath}.operator", value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(
                    invalid(
                        f"{ipath}.operator",
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            errs.append(not_supported(f"{ipath}.operator", op, ("Equal", "Exists")))
        if effect and effect not in _TAINT_EFFECTS:
            errs.append(not_supported(f"{ipath}.effect", effect, _TAINT_EFFECTS))
    return errs


# -- affinity -------------------------------------------------------------------------


def _node_selector_requirement(req: dict, path: str, *, check_values: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    op, values = req.get("operator") or "", req.get("values") or []
    if op in ("In", "NotIn"):
        if not values:
            errs.append(
                required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
            )
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(
                forbidden(
                    f"{path}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(
                required(
                    f"{path}.values",
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                )
            )
    else:
        errs.append(invalid(f"{path}.operator", op, "not a valid selector operator"))
    key = req.get("key") or ""
    errs.extend(invalid(f"{path}.key", key, m) for m in meta.is_qualified_name(key))
    if check_values:
        for j, value in enumerate(values):
            errs.extend(
                invalid(f"{path}.values[{j}]", value, m) for m in meta.is_valid_label_value(value)
            )
    return errs


def _node_selector_term(term: Any, path: str, *, check_values: bool) -> list[FieldError]:
    term = term or {}
    errs: list[FieldError] = []
    for j, req in enumerate(term.get("matchExpressions") or []):
        errs.extend(
            _node_selector_requirement(
                req or {}, f"{path}.matchExpressions[{j}]", check_values=check_values
            )
        )
    for j, req in enumerate(term.get("matchFields") or []):
        req = req or {}
        fpath = f"{path}.matchFields[{j}]"
        if req.get("operator") in ("In", "NotIn"):
            if len(req.get("values") or []) != 1:
                errs.append(
                    required(
                        f"{fpath}.values",
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    )
                )
        else:
            errs.append(
                invalid(
                    f"{fpath}.operator", req.get("operator") or "", "not a valid selector operator"
                )
            )
        if req.get("key") != "metadata.name":
            errs.append(
                invalid(f"{fpath}.key", req.get("key") or "", "not a valid field selector key")
            )
        else:
            for k, value in enumerate(req.get("values") or []):
                errs.extend(
                    invalid(f"{fpath}.values[{k}]", value, m) for m in meta.dns1123_subdomain(value)
                )
    return errs


def _pod_affinity_term(term: Any, path: str) -> list[FieldError]:
    term = term or {}
    errs = meta.validate_label_selector(term.get("labelSelector"), f"{path}.labelSelector")
    errs.extend(
        meta.validate_label_selector(term.get("namespaceSelector"), f"{path}.namespaceSelector")
    )
    for name in term.get("namespaces") or []:
        errs.extend(invalid(f"{path}.namespace", name, m) for m in meta.dns1123_label(name))
    topology_key = term.get("topologyKey") or ""
    if not topology_key:
        errs.append(required(f"{path}.topologyKey", "can not be empty"))
    errs.extend(
        invalid(f"{path}.topologyKey", topology_key, m)
        for m in meta.is_qualified_name(topology_key)
    )
    return errs


def _pod_affinity(affinity: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, term in enumerate(affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
        errs.extend(
            _pod_affinity_term(term, f"{path}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
        )
    for i, weighted in enumerate(
        affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    ):
        weighted = weighted or {}
        wpath = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        weight = weighted.get("weight", 0)
        if not 0 < weight <= 100:
            errs.append(invalid(f"{wpath}.weight", weight, "must be in the range 1-100"))
        errs.extend(_pod_affinity_term(weighted.get("podAffinityTerm"), f"{wpath}.podAffinityTerm"))
    return errs


def validate_affinity(affinity: Any, path: str) -> list[FieldError]:
    if not isinstance(affinity, dict):
        return []
    errs: list[FieldError] = []
    node = affinity.get("nodeAffinity")
    if isinstance(node, dict):
        npath = f"{path}.nodeAffinity"
        required_terms = node.get("requiredDuringSchedulingIgnoredDuringExecution")
        if required_terms is not None:
            tpath = f"{npath}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
            terms = required_terms.get("nodeSelectorTerms") or []
            if not terms:
                errs.append(required(tpath, "must have at least one node selector term"))
            for i, term in enumerate(terms):
                errs.extend(_node_selector_term(term, f"{tpath}[{i}]", check_values=True))
        for i, pref in enumerate(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            pref = pref or {}
            ppath = f"{npath}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            weight = pref.get("weight", 0)
            if not 0 < weight <= 100:
                errs.append(invalid(f"{ppath}.weight", weight, "must be in the range 1-100"))
            errs.extend(
                _node_selector_term(
                    pref.get("preference"), f"{ppath}.preference", check_values=False
                )
            )
    for key in ("podAffinity", "podAntiAffinity"):
        if isinstance(affinity.get(key), dict):
            errs.extend(_pod_affinity(affinity[key], f"{path}.{key}"))
    return errs


# -- smaller pod-wide fields ---------------------------------------------------------------


def _validate_dns_config(config: Any, policy: str, path: str) -> list[FieldError]:
    if policy == "None":
        if config is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not config.get("nameservers"):
            return [
                required(
                    f"{path}.nameservers",
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )
            ]
    if config is None:
        return []
    errs: list[FieldError] = []
    servers = config.get("nameservers") or []
    if len(servers) > 3:
        errs.append(
            invalid(f"{path}.nameservers", servers, "must not have more than 3 nameservers")
        )
    for i, server in enumerate(servers):
        errs.extend(_valid_ip(server, f"{path}.nameservers[{i}]"))
    searches = config.get("searches") or []
    if len(searches) > 32:
        errs.append(
            invalid(f"{path}.searches", searches, "must not have more than 32 search paths")
        )
    if len(" ".join(searches)) > 2048:
        errs.append(
            invalid(
                f"{path}.searches",
                searches,
                "must not have more than 2048 characters (including spaces) in the search list",
            )
        )
    for i, search in enumerate(searches):
        if search == ".":
            continue
        search = search.removesuffix(".")
        errs.extend(
            invalid(f"{path}.searches[{i}]", search, m)
            for m in meta.is_dns1123_subdomain_with_underscore(search)
        )
    for i, option in enumerate(config.get("options") or []):
        if not (option or {}).get("name"):
            errs.append(required(f"{path}.options[{i}]", "must not be empty"))
    return errs


def _validate_topology_spread(constraints: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    constraints = constraints or []
    for i, c in enumerate(constraints):
        c = c or {}
        ipath = f"{path}[{i}]"
        skew = c.get("maxSkew", 0)
        if skew <= 0:
            errs.append(invalid(f"{ipath}.maxSkew", skew, "must be greater than zero"))
        key = c.get("topologyKey") or ""
        if not key:
            errs.append(required(f"{ipath}.topologyKey", "can not be empty"))
        else:
            errs.extend(
                invalid(f"{ipath}.topologyKey", key, m) for m in meta.is_qualified_name(key)
            )
        when = c.get("whenUnsatisfiable") or ""
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(
                not_supported(
                    f"{ipath}.whenUnsatisfiable", when, ("DoNotSchedule", "ScheduleAnyway")
                )
            )
        for other in constraints[i + 1 :]:
            if (other or {}).get("topologyKey") == key and (other or {}).get(
                "whenUnsatisfiable"
            ) == when:
                errs.append(
                    duplicate(f"{ipath}.{{topologyKey, whenUnsatisfiable}}", f"{{{key}, {when}}}")
                )
                break
        min_domains = c.get("minDomains")
        if min_domains is not None:
            if min_domains <= 0:
                errs.append(invalid(f"{ipath}.minDomains", min_domains, "must be greater than 0"))
            if when != "DoNotSchedule":
                errs.append(
                    invalid(
                        f"{ipath}.minDomains",
                        min_domains,
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway",
                    )
                )
        errs.extend(meta.validate_label_selector(c.get("labelSelector"), f"{ipath}.labelSelector"))
    return errs


def _validate_names(spec: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    checks = (
        ("serviceAccountName", meta.dns1123_subdomain),
        ("nodeName", meta.dns1123_subdomain),
    )
    for key, fn in checks:
        if spec.get(key):
            errs.extend(invalid(f"{path}.{key}", spec[key], m) for m in fn(spec[key]))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= _MAX_INT32:
        errs.append(
            invalid(
                f"{path}.activeDeadlineSeconds", deadline, meta.inclusive_range_error(1, _MAX_INT32)
            )
        )
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            errs.extend(
                invalid(f"{path}.{key}", spec[key], m) for m in meta.is_dns1123_label(spec[key])
            )
    if spec.get("tolerations"):
        errs.extend(validate_tolerations(spec["tolerations"], f"{path}.tolerations"))
    for i, alias in enumerate(spec.get("hostAliases") or []):
        alias = alias or {}
        errs.extend(_valid_ip(alias.get("ip") or "", f"{path}.hostAliases[{i}].ip"))
        for j, host in enumerate(alias.get("hostnames") or []):
            errs.extend(
                invalid(f"{path}.hostAliases[{i}].hostnames[{j}]", host, m)
                for m in meta.is_dns1123_subdomain(host)
            )
    if spec.get("priorityClassName"):
        errs.extend(
            invalid(f"{path}.priorityClassName", spec["priorityClassName"], m)
            for m in meta.dns1123_subdomain(spec["priorityClassName"])
        )
    if spec.get("runtimeClassName") is not None:
        name = spec["runtimeClassName"]
        errs.extend(
            invalid(f"{path}.runtimeClassName", name, m) for m in meta.dns1123_subdomain(name)
        )
    preemption = spec.get("preemptionPolicy")
    if preemption is not None:
        if not preemption:
            errs.append(required(f"{path}.preemptionPolicy"))
        elif preemption not in ("PreemptLowerPriority", "Never"):
            errs.append(
                not_supported(
                    f"{path}.preemptionPolicy", preemption, ("PreemptLowerPriority", "Never")
                )
            )
    if spec.get("overhead") is not None:
        errs.extend(
            validate_resource_requirements({"limits": spec["overhead"]}, f"{path}.overhead")
        )
    os_name = (spec.get("os") or {}).get("name") if spec.get("os") is not None else None
    if os_name is not None and os_name not in ("linux", "windows"):
        errs.append(not_supported(f"{path}.os.name", os_name, ("linux", "windows")))
    return errs


def _host_network_ports(spec: dict, path: str, *, is_pod: bool) -> list[FieldError]:
    if not spec.get("hostNetwork"):
        return []
    errs: list[FieldError] = []
    for i, ctr in enumerate(spec.get("containers") or []):
        for j, port in enumerate((ctr or {}).get("ports") or []):
            port = port or {}
            host, cont = port.get("hostPort", 0) or 0, port.get("containerPort", 0) or 0
            if (is_pod or host != 0) and host != cont:
                errs.append(
                    invalid(
                        f"{path}.containers[{i}].ports[{j}].hostPort",
                        host,
                        "must match `containerPort` when `hostNetwork` is true",
                    )
                )
    return errs


def validate_pod_spec(
    spec: dict, path: str, *, pod_name: str = "", is_pod: bool = False
) -> list[FieldError]:
    """ValidatePodSpec. `pod_name` is set for real Pods (checks ephemeral claim names)."""
    errs: list[FieldError] = []
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.append(required(f"{path}.terminationGracePeriodSeconds"))
    volumes, vol_errs = validate_volumes(spec.get("volumes"), f"{path}.volumes", pod_name=pod_name)
    errs.extend(vol_errs)
    claim_names = {
        c.get("name")
        for c in spec.get("resourceClaims") or []
        if isinstance(c, dict) and c.get("name")
    }
    ctx = PodContext(spec, volumes, claim_names)
    errs.extend(validate_containers(spec.get("containers"), ctx, f"{path}.containers"))
    errs.extend(
        validate_init_containers(
            spec.get("initContainers"), spec.get("containers"), ctx, f"{path}.initContainers"
        )
    )
    errs.extend(
        validate_ephemeral_containers(
            spec.get("ephemeralContainers"), spec, ctx, f"{path}.ephemeralContainers"
        )
    )
    errs.extend(_host_network_ports(spec, path, is_pod=is_pod))
    restart = spec.get("restartPolicy") or ""
    if not restart:
        errs.append(required(f"{path}.restartPolicy"))
    elif restart not in RESTART_POLICIES:
        errs.append(not_supported(f"{path}.restartPolicy", restart, RESTART_POLICIES))
    dns = spec.get("dnsPolicy") or ""
    if not dns:
        errs.append(required(f"{path}.dnsPolicy"))
    elif dns not in DNS_POLICIES:
        errs.append(not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    errs.extend(meta.validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    errs.extend(
        validate_pod_security_context(spec.get("securityContext"), f"{path}.securityContext")
    )
    errs.extend(validate_host_namespaces(spec, path))
    for i, secret in enumerate(spec.get("imagePullSecrets") or []):
        if isinstance(secret, dict) and set(secret) - {"name"}:
            errs.append(invalid(f"{path}.imagePullSecrets[{i}]", secret, "only name may be set"))
    errs.extend(validate_affinity(spec.get("affinity"), f"{path}.affinity"))
    errs.extend(_validate_dns_config(spec.get("dnsConfig"), dns, f"{path}.dnsConfig"))
    for i, gate in enumerate(spec.get("readinessGates") or []):
        kind = (gate or {}).get("conditionType") or ""
        errs.extend(
            invalid(f"{path}.readinessGates[{i}].conditionType", kind, m)
            for m in meta.is_qualified_name(kind)
        )
    seen_gates: set[str] = set()
    for i, gate in enumerate(spec.get("schedulingGates") or []):
        name = (gate or {}).get("name") or ""
        errs.extend(
            invalid(f"{path}.schedulingGates[{i}]", name, m) for m in meta.is_qualified_name(name)
        )
        if name in seen_gates:
            errs.append(duplicate(f"{path}.schedulingGates[{i}]", name))
        seen_gates.add(name)
    errs.extend(
        _validate_topology_spread(
            spec.get("topologySpreadConstraints"), f"{path}.topologySpreadConstraints"
        )
    )
    errs.extend(_validate_names(spec, path))
    return errs


def validate_pod_template_spec(template: Any, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpec: the template's labels and annotations, and its PodSpec."""
    template = template if isinstance(template, dict) else {}
    tmeta = template.get("metadata") or {}
    errs = meta.validate_labels(tmeta.get("labels"), f"{path}.labels")
    errs.extend(meta.validate_annotations(tmeta.get("annotations"), f"{path}.annotations"))
    spec = template.get("spec") or {}
    errs.extend(validate_pod_spec(spec, f"{path}.spec"))
    if spec.get("ephemeralContainers"):
        errs.append(
            forbidden(
                f"{path}.spec.ephemeralContainers",
                "ephemeral containers not allowed in pod template",
            )
        )
    return errs
