"""Validation of containers: the regular, init and ephemeral lists of a PodSpec.

`validate_containers`, `validate_init_containers` and
`validate_ephemeral_containers` check one list each, given the pod's valid
volumes by name so that volume mounts resolve. The checks run in upstream's
order, because the order of messages in a 422 is visible to users: name, image,
terminationMessagePolicy, ports, env, envFrom, volumeMounts, volumeDevices,
imagePullPolicy, resources, resizePolicy, securityContext, then the rules of the
list (duplicate names, lifecycle, probes, restartPolicy).
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_found,
    not_supported,
    required,
)
from kubi.api.kinds import meta
from kubi.api.kinds.container_fields import (
    host_port_conflicts,
    validate_env,
    validate_env_from,
    validate_ports,
)
from kubi.api.kinds.resources import validate_resource_requirements
from kubi.api.kinds.security import validate_container_security_context
from kubi.api.kinds.volume_validation import validate_local_descending_path, validate_no_backsteps

_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_MOUNT_PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")
_RRO = ("Disabled", "Enabled", "IfPossible")
_HTTP_SCHEMES = ("HTTP", "HTTPS")
_EPHEMERAL_ALLOWED = {
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "envFrom",
    "env",
    "volumeMounts",
    "volumeDevices",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
    "targetContainerName",
}
_SIDECAR_ONLY = "may not be set for init containers without restartPolicy=Always"


class PodContext:
    """What container checks need to know about the pod they are in."""

    def __init__(self, spec: dict, volumes: dict[str, dict], claim_names: set[str]) -> None:
        self.volumes = volumes
        self.claim_names = claim_names
        self.restart_policy = spec.get("restartPolicy") or ""
        grace = spec.get("terminationGracePeriodSeconds")
        self.grace: int | None = grace if isinstance(grace, int) else None
        self.host_users = spec.get("hostUsers") is not False


# -- mounts ------------------------------------------------------------------------------


def _validate_mounts(ctr: dict, ctx: PodContext, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    devices = {
        d.get("name"): d.get("devicePath")
        for d in ctr.get("volumeDevices") or []
        if isinstance(d, dict)
    }
    mount_points: set[str] = set()
    privileged = (ctr.get("securityContext") or {}).get("privileged") is True
    for i, mount in enumerate(ctr.get("volumeMounts") or []):
        mount = mount or {}
        ipath = f"{path}[{i}]"
        name = mount.get("name") or ""
        target = mount.get("mountPath") or ""
        if not name:
            errs.append(required(f"{ipath}.name"))
        if name not in ctx.volumes:
            errs.append(not_found(f"{ipath}.name", name))
        if not target:
            errs.append(required(f"{ipath}.mountPath"))
        if target in mount_points:
            errs.append(invalid(f"{ipath}.mountPath", target, "must be unique"))
        mount_points.add(target)
        if name in devices:
            errs.append(invalid(f"{ipath}.name", name, "must not already exist in volumeDevices"))
        if target in devices.values():
            errs.append(
                invalid(
                    f"{ipath}.mountPath",
                    target,
                    "must not already exist as a path in volumeDevices",
                )
            )
        if (ctx.volumes.get(name) or {}).get("image") is not None:
            for key in ("subPath", "subPathExpr"):
                if mount.get(key):
                    errs.append(
                        invalid(f"{ipath}.{key}", mount[key], "not allowed in image volume sources")
                    )
        # Upstream reports these two at the list's path, without the index.
        if mount.get("subPath"):
            errs.extend(validate_local_descending_path(mount["subPath"], f"{path}.subPath"))
        if mount.get("subPathExpr"):
            if mount.get("subPath"):
                errs.append(
                    invalid(
                        f"{ipath}.subPathExpr",
                        mount["subPathExpr"],
                        "subPathExpr and subPath are mutually exclusive",
                    )
                )
            errs.extend(validate_local_descending_path(mount["subPathExpr"], f"{path}.subPathExpr"))
        propagation = mount.get("mountPropagation")
        if propagation is not None:
            if propagation not in _MOUNT_PROPAGATIONS:
                errs.append(
                    not_supported(f"{path}.mountPropagation", propagation, _MOUNT_PROPAGATIONS)
                )
            if propagation == "Bidirectional" and not privileged:
                errs.append(
                    forbidden(
                        f"{path}.mountPropagation",
                        "Bidirectional mount propagation is available only to privileged containers",
                    )
                )
        rro = mount.get("recursiveReadOnly")
        if rro is not None and rro != "Disabled":
            if rro not in _RRO:
                errs.append(not_supported(f"{path}.recursiveReadOnly", rro, _RRO))
            else:
                if not mount.get("readOnly"):
                    errs.append(
                        forbidden(
                            f"{path}.recursiveReadOnly",
                            "may only be specified when readOnly is true",
                        )
                    )
                if propagation not in (None, "None"):
                    errs.append(
                        forbidden(
                            f"{path}.recursiveReadOnly",
                            "may only be specified when mountPropagation is None or not specified",
                        )
                    )
    return errs


def _validate_devices(ctr: dict, ctx: PodContext, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    mounts = {
        m.get("name"): m.get("mountPath")
        for m in ctr.get("volumeMounts") or []
        if isinstance(m, dict)
    }
    names: set[str] = set()
    paths: set[str] = set()
    for i, dev in enumerate(ctr.get("volumeDevices") or []):
        dev = dev or {}
        ipath = f"{path}[{i}]"
        name, target = dev.get("name") or "", dev.get("devicePath") or ""
        volume = ctx.volumes.get(name)
        if not name:
            errs.append(required(f"{ipath}.name"))
        if name in names:
            errs.append(invalid(f"{ipath}.name", name, "must be unique"))
        if (
            volume is not None
            and volume.get("persistentVolumeClaim") is None
            and volume.get("ephemeral") is None
        ):
            errs.append(
                invalid(
                    f"{ipath}.name",
                    name,
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                )
            )
        if volume is None:
            errs.append(not_found(f"{ipath}.name", name))
        if not target:
            errs.append(required(f"{ipath}.devicePath"))
        if target in paths:
            errs.append(invalid(f"{ipath}.devicePath", target, "must be unique"))
        if target and validate_no_backsteps(target, ipath):
            errs.append(invalid(f"{ipath}.devicePath", target, "can not contain backsteps ('..')"))
        else:
            paths.add(target)
        if name in mounts:
            errs.append(invalid(f"{ipath}.name", name, "must not already exist in volumeMounts"))
        if target in mounts.values():
            errs.append(
                invalid(
                    f"{ipath}.devicePath",
                    target,
                    "must not already exist as a path in volumeMounts",
                )
            )
        if name:
            names.add(name)
    return errs


# -- probes and lifecycle --------------------------------------------------------------


def _port_num_or_name(port: Any, path: str) -> list[FieldError]:
    if isinstance(port, str):
        return [invalid(path, port, m) for m in meta.is_valid_port_name(port)]
    return [invalid(path, port, m) for m in meta.is_valid_port_num(port)]


def _int_port(value: Any) -> int:
    # A gRPC port is a plain integer; anything else is as good as unset.
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _validate_handler(
    handler: dict, grace: int | None, path: str, *, probe: bool
) -> list[FieldError]:
    errs: list[FieldError] = []
    kinds = (
        ("exec", "httpGet", "tcpSocket", "grpc")
        if probe
        else ("exec", "httpGet", "tcpSocket", "sleep")
    )
    count = 0
    for kind in kinds:
        body = handler.get(kind)
        if body is None:
            continue
        if count:
            errs.append(forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        kpath = f"{path}.{kind}"
        if kind == "exec" and not body.get("command"):
            errs.append(required(f"{kpath}.command"))
        elif kind == "httpGet":
            if not body.get("path"):
                errs.append(required(f"{kpath}.path"))
            errs.extend(_port_num_or_name(body.get("port", 0), f"{kpath}.port"))
            scheme = body.get("scheme") or ""
            if scheme not in _HTTP_SCHEMES:
                errs.append(not_supported(f"{kpath}.scheme", scheme, _HTTP_SCHEMES))
            for header in body.get("httpHeaders") or []:
                name = (header or {}).get("name") or ""
                errs.extend(
                    invalid(f"{kpath}.httpHeaders", name, m) for m in meta.is_http_header_name(name)
                )
        elif kind == "tcpSocket":
            errs.extend(_port_num_or_name(body.get("port", 0), f"{kpath}.port"))
        elif kind == "grpc":
            errs.extend(_port_num_or_name(_int_port(body.get("port")), f"{kpath}.port"))
        elif kind == "sleep":
            seconds = body.get("seconds", 0)
            if grace is not None and (seconds < 0 or seconds > grace):
                errs.append(
                    invalid(
                        kpath,
                        seconds,
                        f"must be non-negative and less than terminationGracePeriodSeconds ({grace})",
                    )
                )
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _validate_probe(probe: Any, grace: int | None, path: str, kind: str) -> list[FieldError]:
    if probe is None:
        return []
    errs = _validate_handler(probe, grace, path, probe=True)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs.extend(meta.validate_nonnegative(probe.get(key, 0), f"{path}.{key}"))
    tgps = probe.get("terminationGracePeriodSeconds")
    if tgps is not None and tgps <= 0:
        errs.append(
            invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must be greater than 0")
        )
    if kind in ("livenessProbe", "startupProbe") and probe.get("successThreshold", 0) != 1:
        errs.append(
            invalid(f"{path}.successThreshold", probe.get("successThreshold", 0), "must be 1")
        )
    if kind == "readinessProbe" and tgps is not None:
        errs.append(
            invalid(
                f"{path}.terminationGracePeriodSeconds", tgps, "must not be set for readinessProbes"
            )
        )
    return errs


def _validate_probes_and_lifecycle(ctr: dict, grace: int | None, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    lifecycle = ctr.get("lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            if lifecycle.get(hook) is not None:
                errs.extend(
                    _validate_handler(
                        lifecycle[hook], grace, f"{path}.lifecycle.{hook}", probe=False
                    )
                )
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        errs.extend(_validate_probe(ctr.get(kind), grace, f"{path}.{kind}", kind))
    return errs


# -- containers ------------------------------------------------------------------------


def _validate_resize_policy(policies: Any, path: str, restart_policy: str) -> list[FieldError]:
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, policy in enumerate(policies or []):
        policy = policy or {}
        name, restart = policy.get("resourceName") or "", policy.get("restartPolicy") or ""
        if name in seen:
            errs.append(duplicate(f"{path}[{i}]", name))
        seen.add(name)
        if not name:
            errs.append(required(path))
        elif name not in ("cpu", "memory"):
            errs.append(not_supported(path, name, ("cpu", "memory")))
        if not restart:
            errs.append(required(path))
        elif restart not in ("NotRequired", "RestartContainer"):
            errs.append(not_supported(path, restart, ("NotRequired", "RestartContainer")))
        if restart_policy == "Never" and restart != "NotRequired":
            errs.append(
                invalid(path, restart, "must be 'NotRequired' when `restartPolicy` is 'Never'")
            )
    return errs


def validate_container_common(ctr: dict, ctx: PodContext, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = ctr.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs.extend(invalid(f"{path}.name", name, m) for m in meta.is_dns1123_label(name))
    if not ctr.get("image"):
        errs.append(required(f"{path}.image"))
    policy = ctr.get("terminationMessagePolicy") or ""
    if not policy:
        errs.append(required(f"{path}.terminationMessagePolicy"))
    elif policy not in ("File", "FallbackToLogsOnError"):
        errs.append(
            not_supported(
                f"{path}.terminationMessagePolicy", policy, ("File", "FallbackToLogsOnError")
            )
        )
    errs.extend(validate_ports(ctr.get("ports"), f"{path}.ports"))
    errs.extend(validate_env(ctr.get("env"), f"{path}.env"))
    errs.extend(validate_env_from(ctr.get("envFrom"), f"{path}.envFrom"))
    errs.extend(_validate_mounts(ctr, ctx, f"{path}.volumeMounts"))
    errs.extend(_validate_devices(ctr, ctx, f"{path}.volumeDevices"))
    pull = ctr.get("imagePullPolicy") or ""
    if not pull:
        errs.append(required(f"{path}.imagePullPolicy"))
    elif pull not in _PULL_POLICIES:
        errs.append(not_supported(f"{path}.imagePullPolicy", pull, _PULL_POLICIES))
    errs.extend(
        validate_resource_requirements(
            ctr.get("resources"), f"{path}.resources", claim_names=ctx.claim_names
        )
    )
    errs.extend(
        _validate_resize_policy(ctr.get("resizePolicy"), f"{path}.resizePolicy", ctx.restart_policy)
    )
    errs.extend(
        validate_container_security_context(
            ctr.get("securityContext"), f"{path}.securityContext", host_users=ctx.host_users
        )
    )
    return errs


def validate_containers(containers: Any, ctx: PodContext, path: str) -> list[FieldError]:
    if not containers:
        return [required(path)]
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, ctr in enumerate(containers):
        ctr = ctr if isinstance(ctr, dict) else {}
        ipath = f"{path}[{i}]"
        errs.extend(validate_container_common(ctr, ctx, ipath))
        name = ctr.get("name") or ""
        if name in names:
            errs.append(duplicate(f"{ipath}.name", name))
        names.add(name)
        errs.extend(_validate_probes_and_lifecycle(ctr, ctx.grace, ipath))
        if ctr.get("restartPolicy") is not None:
            errs.append(
                forbidden(f"{ipath}.restartPolicy", "may not be set for non-init containers")
            )
    errs.extend(host_port_conflicts(containers, path))
    return errs


def validate_init_containers(
    init: Any, regular: Any, ctx: PodContext, path: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    names = {(c or {}).get("name") for c in regular or []}
    for i, ctr in enumerate(init or []):
        ctr = ctr if isinstance(ctr, dict) else {}
        ipath = f"{path}[{i}]"
        errs.extend(validate_container_common(ctr, ctx, ipath))
        restart = ctr.get("restartPolicy")
        if restart is not None and restart != "Always":
            errs.append(not_supported(f"{ipath}.restartPolicy", restart, ("Always",)))
        name = ctr.get("name") or ""
        if name in names:
            errs.append(duplicate(f"{ipath}.name", name))
        elif name:
            names.add(name)
        # Init containers run one at a time, so their host ports only clash within one container.
        errs.extend(host_port_conflicts([ctr], path))
        if restart == "Always":
            errs.extend(_validate_probes_and_lifecycle(ctr, ctx.grace, ipath))
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if ctr.get(key) is not None:
                    errs.append(forbidden(f"{ipath}.{key}", _SIDECAR_ONLY))
        if ctr.get("resizePolicy"):
            errs.append(
                invalid(
                    f"{ipath}.resizePolicy",
                    meta.GoLiteral("[]core.ContainerResizePolicy{...}"),
                    "must not be set for init containers",
                )
            )
    return errs


def validate_ephemeral_containers(
    ephemeral: Any, spec: dict, ctx: PodContext, path: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    others = {
        (c or {}).get("name")
        for key in ("containers", "initContainers")
        for c in spec.get(key) or []
    }
    names = set(others)
    for i, ctr in enumerate(ephemeral or []):
        ctr = ctr if isinstance(ctr, dict) else {}
        ipath = f"{path}[{i}]"
        errs.extend(validate_container_common(ctr, ctx, ipath))
        errs.extend(validate_image_whitespace(ctr, ipath))
        name = ctr.get("name") or ""
        if name in names:
            errs.append(duplicate(f"{ipath}.name", name))
        names.add(name)
        target = ctr.get("targetContainerName") or ""
        if target and target not in others:
            errs.append(not_found(f"{ipath}.targetContainerName", target))
        for key, value in ctr.items():
            if key not in _EPHEMERAL_ALLOWED and value not in (None, "", [], {}, False, 0):
                errs.append(forbidden(f"{ipath}.{key}", "cannot be set for an Ephemeral Container"))
        for j, mount in enumerate(ctr.get("volumeMounts") or []):
            for key in ("subPath", "subPathExpr"):
                if (mount or {}).get(key):
                    errs.append(
                        forbidden(
                            f"{ipath}.volumeMounts[{j}].{key}",
                            "cannot be set for an Ephemeral Container",
                        )
                    )
    return errs


def validate_image_whitespace(ctr: dict, path: str) -> list[FieldError]:
    """Pods (not templates) reject images with surrounding whitespace."""
    image = ctr.get("image") or ""
    if image != image.strip():
        return [invalid(f"{path}.image", image, "must not have leading or trailing whitespace")]
    return []
