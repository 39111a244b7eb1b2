"""Defaults for PodSpec and everything nested in it, as v1.33 fills them in.

Two entry points mirror upstream's split: `default_pod_spec` is what every
PodSpec gets, wherever it is embedded (Pods, PodTemplates, Deployments, ...);
`default_pod` adds what only a Pod gets (requests copied from limits,
`enableServiceLinks`, host ports under hostNetwork). Resource quantities are
rewritten in their canonical spelling, because upstream decodes them into
Quantity values and serializes them back (`1.5Gi` is stored as `1536Mi`).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from kubi.api.quantity import Quantity, parse_quantity

DEFAULT_FILE_MODE = 420  # 0644
DEFAULT_TERMINATION_GRACE = 30
DEFAULT_SCHEDULER = "default-scheduler"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
TOKEN_EXPIRATION_SECONDS = 3600

_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE_DEFAULTS = (
    ("timeoutSeconds", 1),
    ("periodSeconds", 10),
    ("successThreshold", 1),
    ("failureThreshold", 3),
)
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

# Docker reference grammar, enough to tell a tag from a registry port or a digest.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REMOTE_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_HEX64_RE = re.compile(r"[a-f0-9]{64}")


def image_tag(image: str) -> str:
    """The tag an image reference resolves to: `latest` when it names none.

    Returns "" for a reference pinned by digest only, and for one that does not
    parse (the kubelet then reports the error; defaulting just moves on).
    """
    if not image or _HEX64_RE.fullmatch(image):
        return ""
    name, _, digest = image.partition("@")
    if digest and not _DIGEST_RE.fullmatch(digest):
        return ""
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            return ""
    first, sep, rest = name.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        if not _DOMAIN_RE.fullmatch(first):
            return ""
        remote = rest
    else:
        remote = name
    if len(name) > 255 or not _REMOTE_RE.fullmatch(remote):
        return ""
    if not tag and not digest:
        return "latest"
    return tag


# -- quantities ---------------------------------------------------------------------


def _round_up_milli(q: Quantity) -> Quantity:
    # Sub-milli precision is rounded up (away from zero) to whole milli-units.
    milli = q.milli_value()
    if q.amount * 1000 == milli:
        return q
    return Quantity(Fraction(milli, 1000), q.format)


def canonicalize_quantity(value: Any, *, milli: bool = False) -> Any:
    """The canonical spelling of a quantity, or the value untouched if it is not one."""
    try:
        q = parse_quantity(value)
    except ValueError:
        return value
    return str(_round_up_milli(q) if milli else q)


def default_resource_list(resources: Any) -> None:
    """Canonicalize a ResourceList in place, rounding to milli precision as upstream does."""
    if not isinstance(resources, dict):
        return
    for key, value in list(resources.items()):
        resources[key] = canonicalize_quantity(value, milli=True)


# -- nested defaulters -------------------------------------------------------------


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in _PROBE_DEFAULTS:
        if not probe.get(key):
            probe[key] = value
    _default_http_get(probe.get("httpGet"))
    grpc = probe.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _default_field_ref(ref: Any) -> None:
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def default_container(container: dict) -> None:
    """SetDefaults_Container plus everything nested in a container."""
    # `resources` is a struct value upstream, so it is always serialized, if only as {}.
    if not isinstance(container.get("resources"), dict):
        container["resources"] = {}
    if not container.get("imagePullPolicy"):
        tag = image_tag(container.get("image") or "")
        container["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    if not container.get("terminationMessagePath"):
        container["terminationMessagePath"] = TERMINATION_MESSAGE_PATH
    if not container.get("terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    for port in container.get("ports") or []:
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    for env in container.get("env") or []:
        if isinstance(env, dict) and isinstance(env.get("valueFrom"), dict):
            _default_field_ref(env["valueFrom"].get("fieldRef"))
    resources = container.get("resources")
    if isinstance(resources, dict):
        default_resource_list(resources.get("limits"))
        default_resource_list(resources.get("requests"))
    for name in _PROBES:
        _default_probe(container.get(name))
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_http_get(lifecycle[hook].get("httpGet"))


_SOURCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "secret": {"defaultMode": DEFAULT_FILE_MODE},
    "configMap": {"defaultMode": DEFAULT_FILE_MODE},
    "downwardAPI": {"defaultMode": DEFAULT_FILE_MODE},
    "projected": {"defaultMode": DEFAULT_FILE_MODE},
    "hostPath": {"type": ""},
    "iscsi": {"iscsiInterface": "default"},
    "rbd": {"pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring"},
    "azureDisk": {
        "cachingMode": "ReadWrite",
        "fsType": "ext4",
        "readOnly": False,
        "kind": "Shared",
    },
    "scaleIO": {"storageMode": "ThinProvisioned", "fsType": "xfs"},
}

# Every volume source a Volume may carry; one with none of them becomes an emptyDir.
VOLUME_SOURCES = (
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
)


def default_volume(volume: dict) -> None:
    if not any(volume.get(source) is not None for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source, defaults in _SOURCE_DEFAULTS.items():
        body = volume.get(source)
        if isinstance(body, dict):
            for key, value in defaults.items():
                if body.get(key) is None:
                    body[key] = value
    empty_dir = volume.get("emptyDir")
    if isinstance(empty_dir, dict) and empty_dir.get("sizeLimit") is not None:
        empty_dir["sizeLimit"] = canonicalize_quantity(empty_dir["sizeLimit"])
    downward = volume.get("downwardAPI")
    if isinstance(downward, dict):
        for item in downward.get("items") or []:
            if isinstance(item, dict):
                _default_field_ref(item.get("fieldRef"))
    projected = volume.get("projected")
    if isinstance(projected, dict):
        for source in projected.get("sources") or []:
            _default_projection(source)
    ephemeral = volume.get("ephemeral")
    if isinstance(ephemeral, dict) and isinstance(ephemeral.get("volumeClaimTemplate"), dict):
        spec = ephemeral["volumeClaimTemplate"].get("spec")
        if isinstance(spec, dict):
            default_pvc_spec(spec)


def _default_projection(source: Any) -> None:
    if not isinstance(source, dict):
        return
    if isinstance(source.get("downwardAPI"), dict):
        for item in source["downwardAPI"].get("items") or []:
            if isinstance(item, dict):
                _default_field_ref(item.get("fieldRef"))
    token = source.get("serviceAccountToken")
    if isinstance(token, dict) and token.get("expirationSeconds") is None:
        token["expirationSeconds"] = TOKEN_EXPIRATION_SECONDS


def default_pvc_spec(spec: dict) -> None:
    """PersistentVolumeClaimSpec defaults (used by ephemeral volumes and claim templates)."""
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"
    resources = spec.get("resources")
    if isinstance(resources, dict):
        default_resource_list(resources.get("limits"))
        default_resource_list(resources.get("requests"))


# -- PodSpec and Pod ------------------------------------------------------------------


def default_pod_spec(spec: dict) -> None:
    """Defaults every PodSpec gets, wherever it is embedded."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE
    if not spec.get("schedulerName"):
        spec["schedulerName"] = DEFAULT_SCHEDULER
    # The deprecated serviceAccount field mirrors serviceAccountName (v1 conversion).
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            default_volume(volume)
    for key in _CONTAINER_LISTS:
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                default_container(container)
    default_resource_list(spec.get("overhead"))


def _requests_from_limits(container: dict) -> None:
    resources = container.get("resources")
    if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
        return
    requests = resources.get("requests")
    if not isinstance(requests, dict):
        requests = resources["requests"] = {}
    for name, value in resources["limits"].items():
        requests.setdefault(name, value)


def default_pod(pod: dict) -> None:
    """Defaults for a Pod object: its spec's, plus the ones only Pods get."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _requests_from_limits(container)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for key in ("containers", "initContainers"):
            for container in spec.get(key) or []:
                for port in (container or {}).get("ports") or []:
                    if isinstance(port, dict) and not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    default_pod_spec(spec)


def ensure_template_metadata(template: Any) -> None:
    """An embedded ObjectMeta is always serialized in v1.33, with `creationTimestamp: null`."""
    if isinstance(template, dict):
        md = template.get("metadata")
        if not isinstance(md, dict):
            md = template["metadata"] = {}
        md.setdefault("creationTimestamp", None)


def default_pod_template(template: Any) -> None:
    """A PodTemplateSpec embedded in another object gets the PodSpec defaults only."""
    if not isinstance(template, dict):
        return
    ensure_template_metadata(template)
    spec = template.get("spec")
    if isinstance(spec, dict):
        default_pod_spec(spec)
