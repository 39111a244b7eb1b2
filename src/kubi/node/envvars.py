"""A container's environment, resolved as the kubelet resolves it before a start.

`resolve_env` layers, in upstream's order: every `envFrom` source (ConfigMap or
Secret keys, optionally prefixed; impossible names are skipped and reported),
then each `env` entry in order, overriding envFrom. A `value` may use `$(NAME)`
of earlier variables and service variables; `valueFrom` reads a ConfigMap or
Secret key, a pod field or a container resource. Service variables not yet
defined come last. A missing, non-optional object or key raises `ConfigError`
with the kubelet's message (the container waits in CreateContainerConfigError).
`expand` applies the `$(NAME)` rules to command and args (`$$` is `$`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubi.api.kinds.names import is_env_var_name
from kubi.node.volumes.fieldpath import (
    FieldPathError,
    check_pod_field_label,
    container_resource_value,
    extract_metadata_field,
)
from kubi.node.volumes.payloads import PayloadFailure, decode_data

Obj = dict[str, Any]
Lookup = Callable[[str, str], Awaitable[Obj | None]]

CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
INVALID_ENV_NAMES = "InvalidEnvironmentVariableNames"


class ConfigError(Exception):
    """The container cannot be configured yet; `message` is its waiting message."""

    reason = CREATE_CONTAINER_CONFIG_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Problem:
    """Something to record as an event on the pod; the start goes on."""

    reason: str
    message: str
    type: str = "Warning"


def _expand(text: str, resolve: Callable[[str], str]) -> str:
    out: list[str] = []
    i, end = 0, len(text)
    while i < end:
        ch = text[i]
        if ch != "$" or i + 1 == end:
            out.append(ch)
            i += 1
            continue
        follower = text[i + 1]
        if follower == "$":
            out.append("$")
            i += 2
        elif follower == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
            else:
                out.append(resolve(text[i + 2:close]))
                i = close + 1
        else:
            out.append("$" + follower)
            i += 2
    return "".join(out)


def expand(text: str, *envs: Mapping[str, str]) -> str:
    """Expand `$(NAME)` from the first of `envs` defining NAME; unknown names stay."""
    def resolve(name: str) -> str:
        for env in envs:
            if name in env:
                return env[name]
        return f"$({name})"
    return _expand(text, resolve)


def expand_command(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """command + args after expansion: the argv before any image defaults."""
    return [expand(str(part), env)
            for part in [*(container.get("command") or []), *(container.get("args") or [])]]


def expand_subpath_expr(expr: str, env: Mapping[str, str]) -> str:
    """A volumeMount's subPathExpr; an unset or empty variable is an error."""
    missing: set[str] = set()

    def resolve(name: str) -> str:
        value = env.get(name, "")
        if not value:
            missing.add(name)
        return value

    expanded = _expand(expr, resolve)
    if missing:
        raise ConfigError("missing value for " + ", ".join(sorted(missing)))
    return expanded


def _env_name(service_name: str) -> str:
    name = service_name.upper().replace("-", "_").replace(".", "_")
    return "_" + name if name[:1].isdigit() else name


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def service_environment(services: Iterable[Mapping[str, Any]], namespace: str,
                        enable_service_links: bool = True) -> dict[str, str]:
    """Docker-link style variables for the services a pod in `namespace` sees.

    The `kubernetes` service of `default` is always included; other services of the
    pod's own namespace only with `enableServiceLinks`.
    """
    chosen: dict[str, Mapping[str, Any]] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        if ip in ("", "None") or not spec.get("ports"):
            continue
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        if ns == "default" and name == "kubernetes":
            chosen.setdefault(name, svc)
        elif ns == namespace and enable_service_links:
            chosen[name] = svc
    env: dict[str, str] = {}
    for name in sorted(chosen):
        spec = chosen[name]["spec"]
        prefix, ip, ports = _env_name(name), spec["clusterIP"], spec["ports"]
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port.get("port"))
        for index, port in enumerate(ports):
            protocol = (port.get("protocol") or "TCP")
            url = f"{protocol.lower()}://{_host_port(ip, int(port.get('port', 0)))}"
            if index == 0:
                env[f"{prefix}_PORT"] = url
            base = f"{prefix}_PORT_{port.get('port')}_{protocol.upper()}"
            env[base] = url
            env[f"{base}_PROTO"] = protocol.lower()
            env[f"{base}_PORT"] = str(port.get("port"))
            env[f"{base}_ADDR"] = ip
    return env


def sort_ips(ips: list[str], preferred: str) -> list[str]:
    """IPs of `preferred`'s family first (the node's family), order kept otherwise."""
    try:
        family = ipaddress.ip_address(preferred).version
    except ValueError:
        return list(ips)

    def rank(ip: str) -> int:
        try:
            return 0 if ipaddress.ip_address(ip).version == family else 1
        except ValueError:
            return 1
    return sorted(ips, key=rank)


def pod_field_value(pod: Mapping[str, Any], ref: Mapping[str, Any], *, node_ips: list[str],
                    pod_ip: str, pod_ips: list[str]) -> str:
    """A `fieldRef` of an env var."""
    path = ref.get("fieldPath", "")
    check_pod_field_label(path, ref.get("apiVersion") or "v1")
    spec = pod.get("spec") or {}
    if node_ips:
        pod_ips = sort_ips(pod_ips, node_ips[0])
    if pod_ips:
        pod_ip = pod_ips[0]
    if path == "spec.nodeName":
        return spec.get("nodeName") or ""
    if path == "spec.serviceAccountName":
        return spec.get("serviceAccountName") or ""
    if path == "status.hostIP":
        return node_ips[0] if node_ips else ""
    if path == "status.hostIPs":
        return ",".join(node_ips)
    if path == "status.podIP":
        return pod_ip
    if path == "status.podIPs":
        return ",".join(pod_ips)
    return extract_metadata_field(pod, path)


class _Sources:
    """ConfigMaps and Secrets of one resolution, each fetched at most once."""

    def __init__(self, namespace: str, configmaps: Lookup, secrets: Lookup) -> None:
        self.namespace = namespace
        self._lookups = {"configmap": configmaps, "secret": secrets}
        self._found: dict[tuple[str, str], dict[str, str]] = {}

    async def data(self, kind: str, name: str, optional: bool) -> dict[str, str] | None:
        """The object's string data; None when absent and optional."""
        cached = self._found.get((kind, name))
        if cached is not None:
            return cached
        try:
            obj = await self._lookups[kind](self.namespace, name)
        except Exception as exc:  # any lookup failure blocks the start alike
            raise ConfigError(str(exc)) from exc
        if obj is None:
            if optional:
                return None
            raise ConfigError(f'{kind} "{name}" not found')
        if kind == "configmap":
            data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
        else:
            try:
                raw = decode_data(obj, "data")
            except PayloadFailure as exc:
                raise ConfigError(str(exc)) from exc
            # Values are arbitrary bytes; surrogateescape carries them to the exec intact.
            data = {k: v.decode("utf-8", "surrogateescape") for k, v in raw.items()}
        self._found[(kind, name)] = data
        return data


async def resolve_env(pod: Mapping[str, Any], container: Mapping[str, Any], *,
                      lookup_configmap: Lookup, lookup_secret: Lookup, node_ip: str,
                      pod_ip: str, pod_ips: list[str],
                      service_env: Mapping[str, str] | None = None,
                      node_ips: list[str] | None = None,
                      node_allocatable: Mapping[str, str] | None = None,
                      ) -> tuple[dict[str, str], list[Problem]]:
    """The container's environment (ordered) and the events to record about it."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    sources = _Sources(namespace, lookup_configmap, lookup_secret)
    services = dict(service_env or {})
    hosts = list(node_ips) if node_ips else ([node_ip] if node_ip else [])
    env: dict[str, str] = {}
    problems: list[Problem] = []
    for env_from in container.get("envFrom") or []:
        problem = await _add_env_from(env, env_from, sources)
        if problem is not None:
            problems.append(problem)
    for var in container.get("env") or []:
        name = var.get("name", "")
        if var.get("value"):
            env[name] = expand(str(var["value"]), env, services)
            continue
        value: str | None = ""
        if var.get("valueFrom"):
            value = await _value_from(pod, container, var["valueFrom"], sources, hosts,
                                      pod_ip, list(pod_ips), node_allocatable)
        if value is not None:
            env[name] = value
    for name, value in services.items():
        env.setdefault(name, value)
    return env, problems


async def _add_env_from(env: dict[str, str], env_from: Mapping[str, Any],
                        sources: _Sources) -> Problem | None:
    if env_from.get("configMapRef") is not None:
        kind, ref, label = "configmap", env_from["configMapRef"], "configMap"
    elif env_from.get("secretRef") is not None:
        kind, ref, label = "secret", env_from["secretRef"], "secret"
    else:
        return None
    name = ref.get("name", "")
    data = await sources.data(kind, name, bool(ref.get("optional")))
    if data is None:
        return None
    prefix = env_from.get("prefix") or ""
    invalid = []
    for key, value in data.items():
        if is_env_var_name(prefix + key):
            invalid.append(prefix + key)
            continue
        env[prefix + key] = value
    if not invalid:
        return None
    return Problem(INVALID_ENV_NAMES,
                   f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {label} "
                   f"{sources.namespace}/{name} were skipped since they are considered "
                   "invalid environment variable names.")


async def _value_from(pod: Mapping[str, Any], container: Mapping[str, Any],
                      source: Mapping[str, Any], sources: _Sources, hosts: list[str],
                      pod_ip: str, pod_ips: list[str],
                      allocatable: Mapping[str, str] | None) -> str | None:
    """One `valueFrom`; None leaves the variable unset (an optional miss)."""
    try:
        if source.get("fieldRef") is not None:
            return pod_field_value(pod, source["fieldRef"], node_ips=hosts, pod_ip=pod_ip,
                                   pod_ips=pod_ips)
        if source.get("resourceFieldRef") is not None:
            return container_resource_value(source["resourceFieldRef"], pod, container,
                                            allocatable)
    except FieldPathError as exc:
        raise ConfigError(str(exc)) from exc
    for field, kind, label in (("configMapKeyRef", "configmap", "ConfigMap"),
                               ("secretKeyRef", "secret", "Secret")):
        ref = source.get(field)
        if ref is None:
            continue
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        data = await sources.data(kind, name, optional)
        if data is None:
            return None
        if key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in {label} {sources.namespace}/{name}")
        return data[key]
    return ""
