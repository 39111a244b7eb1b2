"""From a pod's container spec to the runtime's `ContainerConfig`.

The environment comes from an `EnvResolver`, the agent's seam to the
configuration sources: the default (`api_env_resolver`) resolves env and
envFrom with `kubi.node.envvars` (ConfigMaps and Secrets read through the
API, fieldRef and resourceFieldRef from the pod). The command and args are
then expanded against that environment (`$(VAR)` rules of `envvars.expand`).

The host runtime runs the pod's command from the node's own filesystem, so
it cannot fall back to an image's entrypoint: without `command` the args
alone are run (the Docker rule for images without an entrypoint), and with
neither the container fails with CreateContainerError and says why. Each
container carries labels naming its pod and spec hash, so a restarted agent
can tell whose it is and whether its spec changed since.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from kubi.api.errors import StatusError
from kubi.api.quantity import parse_quantity
from kubi.client.client import Client, Resource
from kubi.node.envvars import expand_command, resolve_env, service_environment
from kubi.node.runtime.base import ContainerConfig, Mount

CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
CREATE_CONTAINER_ERROR = "CreateContainerError"

# Labels the agent puts on each container so it can find its pod again after a restart.
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_CONTAINER_HASH = "io.kubernetes.container.hash"
LABEL_CONTAINER_KIND = "kubi.dev/container-kind"
LABEL_GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
KIND_INIT = "init"
KIND_REGULAR = "regular"

CONFIGMAPS = Resource("", "v1", "configmaps", True, "ConfigMap")
SECRETS = Resource("", "v1", "secrets", True, "Secret")


class ContainerConfigError(Exception):
    """The container cannot be created; `reason` is the waiting reason to report."""

    def __init__(self, message: str, reason: str = CREATE_CONTAINER_CONFIG_ERROR) -> None:
        super().__init__(message)
        self.reason = reason


# (reason, message) of an event to record about the pod, the start going on.
EnvWarning = tuple[str, str]

# Resolves `container`'s environment given the pod's and the node's IPs; raises
# an exception with a `reason` attribute (ContainerConfigError, envvars.ConfigError)
# when the container cannot be configured yet.
EnvResolver = Callable[[dict[str, Any], dict[str, Any], str, str],
                       Awaitable[tuple[dict[str, str], list[EnvWarning]]]]


def api_env_resolver(client: Client, *,
                     services: Callable[[], list[dict[str, Any]]] | None = None,
                     allocatable: Callable[[], Mapping[str, str]] | None = None) -> EnvResolver:
    """The default resolver: ConfigMaps and Secrets read from the API server."""

    async def lookup(res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await client.get(res, name, namespace)
        except StatusError as err:
            if err.code == 404:
                return None
            raise

    async def resolve(pod: dict[str, Any], container: dict[str, Any], pod_ip: str,
                      host_ip: str) -> tuple[dict[str, str], list[EnvWarning]]:
        spec = pod.get("spec") or {}
        service_env = service_environment(
            services() if services else [], pod["metadata"].get("namespace", "default"),
            spec.get("enableServiceLinks", True) is not False)
        env, problems = await resolve_env(
            pod, container,
            lookup_configmap=lambda ns, name: lookup(CONFIGMAPS, ns, name),
            lookup_secret=lambda ns, name: lookup(SECRETS, ns, name),
            node_ip=host_ip, pod_ip=pod_ip, pod_ips=[pod_ip] if pod_ip else [],
            service_env=service_env,
            node_allocatable=allocatable() if allocatable else None)
        return env, [(p.reason, p.message) for p in problems]

    return resolve


def container_argv(container: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    """command + args expanded; args alone without a command; an error with neither."""
    argv = expand_command(container, env)
    if not argv:
        raise ContainerConfigError(
            f'container "{container.get("name", "")}" has no command: the host runtime runs '
            "processes from the node's filesystem and cannot use the image's entrypoint; "
            "set command (and args) in the container spec", CREATE_CONTAINER_ERROR)
    return argv


def spec_hash(container: dict[str, Any]) -> str:
    """A short digest of the container spec; a changed spec means a restart."""
    body = {k: v for k, v in container.items() if k != "resources"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:8]


def _limits(container: dict[str, Any]) -> tuple[int | None, int | None]:
    limits = (container.get("resources") or {}).get("limits") or {}
    memory = parse_quantity(limits["memory"]).value() if limits.get("memory") else None
    cpu = parse_quantity(limits["cpu"]).milli_value() if limits.get("cpu") else None
    return memory, cpu


def _run_as(pod: dict[str, Any], container: dict[str, Any], key: str) -> int | None:
    own = (container.get("securityContext") or {}).get(key)
    if own is not None:
        return int(own)
    inherited = ((pod.get("spec") or {}).get("securityContext") or {}).get(key)
    return None if inherited is None else int(inherited)


def container_labels(pod: dict[str, Any], container: dict[str, Any], *,
                     init: bool) -> dict[str, str]:
    md = pod["metadata"]
    grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    labels = {
        LABEL_POD_NAME: md["name"],
        LABEL_POD_NAMESPACE: md.get("namespace", ""),
        LABEL_POD_UID: md.get("uid", ""),
        LABEL_CONTAINER_NAME: container.get("name", ""),
        LABEL_CONTAINER_HASH: spec_hash(container),
        LABEL_CONTAINER_KIND: KIND_INIT if init else KIND_REGULAR,
    }
    if grace is not None:
        labels[LABEL_GRACE_PERIOD] = str(grace)
    return labels


def build_container_config(pod: dict[str, Any], container: dict[str, Any], *,
                           env: Mapping[str, str], attempt: int, log_path: str, init: bool,
                           mounts: list[Mount] | None = None) -> ContainerConfig:
    """The runtime's view of one attempt of `container`; raises ContainerConfigError."""
    memory, cpu = _limits(container)
    return ContainerConfig(
        name=container.get("name", ""),
        image=container.get("image", ""),
        argv=container_argv(container, env),
        env=dict(env),
        working_dir=container.get("workingDir") or "",
        mounts=list(mounts or []),
        log_path=log_path,
        tty=bool(container.get("tty")),
        stdin=bool(container.get("stdin")),
        stdin_once=bool(container.get("stdinOnce")),
        run_as_user=_run_as(pod, container, "runAsUser"),
        run_as_group=_run_as(pod, container, "runAsGroup"),
        memory_limit_bytes=memory,
        cpu_limit_millis=cpu,
        attempt=attempt,
        labels=container_labels(pod, container, init=init),
    )
