"""Validation of security contexts: the pod's and each container's.

Both share the user and group id ranges, seccomp and AppArmor profiles; the
pod-level one adds sysctls, fsGroupChangePolicy and the supplemental-groups
and SELinux change policies. Privileged containers are allowed (kubi runs as
a cluster that permits them, as `--allow-privileged=true` does upstream).
"""

from __future__ import annotations

import re
from typing import Any

from kubi.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
)
from kubi.api.kinds.meta import GoLiteral, inclusive_range_error

_MAX_ID = 0xFFFFFFFF
_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_FMT = "(" + _SYSCTL_SEGMENT + "[\\./])*" + _SYSCTL_SEGMENT
_SYSCTL_RE = re.compile(_SYSCTL_FMT)
_SECCOMP_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")


def _check_id(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= _MAX_ID:
        return [invalid(path, value, inclusive_range_error(0, _MAX_ID))]
    return []


def _relative_no_backsteps(value: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if value.startswith("/"):
        errs.append(invalid(path, value, "must be a relative path"))
    if ".." in value.replace("\\", "/").split("/"):
        errs.append(invalid(path, value, "must not contain '..'"))
    return errs


def validate_seccomp_profile(profile: Any, path: str) -> list[FieldError]:
    if profile is None:
        return []
    errs: list[FieldError] = []
    kind = profile.get("type") or ""
    if not kind:
        errs.append(required(f"{path}.type", "type is required when seccompProfile is set"))
    elif kind not in _SECCOMP_TYPES:
        errs.append(not_supported(f"{path}.type", kind, _SECCOMP_TYPES))
    local = profile.get("localhostProfile")
    if kind == "Localhost":
        if local is None:
            errs.append(
                required(f"{path}.localhostProfile", "must be set when seccomp type is Localhost")
            )
        else:
            errs.extend(_relative_no_backsteps(local, f"{path}.localhostProfile"))
    elif local is not None:
        shown = GoLiteral(f'core.SeccompProfile{{Type:"{kind}", LocalhostProfile:"{local}"}}')
        errs.append(
            invalid(
                f"{path}.localhostProfile", shown, "can only be set when seccomp type is Localhost"
            )
        )
    return errs


def validate_apparmor_profile(profile: Any, path: str) -> list[FieldError]:
    if profile is None:
        return []
    kind = profile.get("type") or ""
    local = profile.get("localhostProfile")
    if kind == "Localhost":
        if local is None or (local.strip() == "" and local == local.strip()):
            return [
                required(f"{path}.localhostProfile", "must be set when AppArmor type is Localhost")
            ]
        errs: list[FieldError] = []
        if local.strip() != local:
            errs.append(
                invalid(f"{path}.localhostProfile", local, "must not be padded with whitespace")
            )
        if len(local) > 4095:
            errs.append(too_long(f"{path}.localhostProfile", "", 4095))
        return errs
    if kind in ("RuntimeDefault", "Unconfined"):
        if local is not None:
            return [
                invalid(
                    f"{path}.localhostProfile",
                    local,
                    "can only be set when AppArmor type is Localhost",
                )
            ]
        return []
    if not kind:
        return [required(f"{path}.type", "type is required when appArmorProfile is set")]
    return [not_supported(f"{path}.type", kind, ("Localhost", "RuntimeDefault", "Unconfined"))]


def validate_container_security_context(
    sc: Any, path: str, *, host_users: bool
) -> list[FieldError]:
    if not isinstance(sc, dict):
        return []
    errs: list[FieldError] = []
    errs.extend(_check_id(sc.get("runAsUser"), f"{path}.runAsUser"))
    errs.extend(_check_id(sc.get("runAsGroup"), f"{path}.runAsGroup"))
    proc_mount = sc.get("procMount")
    if proc_mount is not None:
        if proc_mount not in ("Default", "Unmasked"):
            errs.append(not_supported(f"{path}.procMount", proc_mount, ("Default", "Unmasked")))
        if host_users and proc_mount == "Unmasked":
            errs.append(
                invalid(
                    f"{path}.procMount", proc_mount, "`hostUsers` must be false to use `Unmasked`"
                )
            )
    errs.extend(validate_seccomp_profile(sc.get("seccompProfile"), f"{path}.seccompProfile"))
    if sc.get("allowPrivilegeEscalation") is False:
        shown = GoLiteral("&core.SecurityContext{...}")
        if sc.get("privileged") is True:
            errs.append(
                invalid(
                    path,
                    shown,
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                )
            )
        for cap in (sc.get("capabilities") or {}).get("add") or []:
            if cap == "CAP_SYS_ADMIN":
                errs.append(
                    invalid(
                        path,
                        shown,
                        "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                    )
                )
    errs.extend(validate_apparmor_profile(sc.get("appArmorProfile"), f"{path}.appArmorProfile"))
    return errs


def _sysctl_namespace(name: str) -> str:
    dotted = name.replace("/", ".")
    if dotted.startswith(("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")):
        return "ipc"
    if dotted.startswith("net."):
        return "net"
    return ""


def validate_pod_security_context(sc: Any, path: str) -> list[FieldError]:
    if not isinstance(sc, dict):
        return []
    errs: list[FieldError] = []
    errs.extend(_check_id(sc.get("fsGroup"), f"{path}.fsGroup"))
    errs.extend(_check_id(sc.get("runAsUser"), f"{path}.runAsUser"))
    errs.extend(_check_id(sc.get("runAsGroup"), f"{path}.runAsGroup"))
    for i, gid in enumerate(sc.get("supplementalGroups") or []):
        errs.extend(_check_id(gid, f"{path}.supplementalGroups[{i}]"))
    seen: set[str] = set()
    for i, sysctl in enumerate(sc.get("sysctls") or []):
        name = (sysctl or {}).get("name") or ""
        npath = f"{path}.sysctls[{i}].name"
        if not name:
            errs.append(required(npath))
        elif len(name) > 253 or not _SYSCTL_RE.fullmatch(name):
            errs.append(
                invalid(
                    npath, name, f"must have at most 253 characters and match regex ^{_SYSCTL_FMT}$"
                )
            )
        elif name in seen:
            errs.append(duplicate(npath, name))
        seen.add(name)
    policy = sc.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        errs.append(
            not_supported(f"{path}.fsGroupChangePolicy", policy, ("Always", "OnRootMismatch"))
        )
    errs.extend(validate_seccomp_profile(sc.get("seccompProfile"), f"{path}.seccompProfile"))
    errs.extend(validate_apparmor_profile(sc.get("appArmorProfile"), f"{path}.appArmorProfile"))
    groups_policy = sc.get("supplementalGroupsPolicy")
    if groups_policy is not None and groups_policy not in ("Merge", "Strict"):
        errs.append(
            not_supported(f"{path}.supplementalGroupsPolicy", groups_policy, ("Merge", "Strict"))
        )
    selinux = sc.get("seLinuxChangePolicy")
    if selinux is not None and selinux not in ("MountOption", "Recursive"):
        errs.append(
            not_supported(f"{path}.seLinuxChangePolicy", selinux, ("MountOption", "Recursive"))
        )
    return errs


def validate_host_namespaces(spec: dict, path: str) -> list[FieldError]:
    """Sysctls of a namespace the pod shares with the host, and user namespaces."""
    errs: list[FieldError] = []
    sc = spec.get("securityContext") or {}
    for i, sysctl in enumerate(sc.get("sysctls") or []):
        name = (sysctl or {}).get("name") or ""
        ns = _sysctl_namespace(name)
        npath = f"{path}.securityContext.sysctls[{i}].name"
        if spec.get("hostNetwork") and ns == "net":
            errs.append(invalid(npath, name, "may not be specified when 'hostNetwork' is true"))
        elif spec.get("hostIPC") and ns == "ipc":
            errs.append(invalid(npath, name, "may not be specified when 'hostIPC' is true"))
    if spec.get("hostUsers") is False:
        for key, child in (
            ("hostNetwork", "hostNetwork"),
            ("hostPID", "HostPID"),
            ("hostIPC", "HostIPC"),
        ):
            if spec.get(key):
                errs.append(forbidden(f"{path}.{child}", "when `pod.Spec.HostUsers` is false"))
    return errs
